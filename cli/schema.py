"""`verwijsindex schema ...`"""

from __future__ import annotations

from pathlib import Path

import click

from shared.contract.asyncapi import write_asyncapi
from shared.contract.schema_export import export_schemas


@click.group()
def schema() -> None:
    """The JSON Schema of every partner message, and the AsyncAPI document."""


@schema.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write one JSON Schema file per inbound and outbound message into DIRECTORY,
    and asyncapi.yaml: the AsyncAPI 3.0 document of the whole partner interface."""
    written = [*export_schemas(directory), write_asyncapi(directory)]
    for path in written:
        click.echo(str(path))
