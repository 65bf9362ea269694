"""`verwijsindex db ...`"""

from __future__ import annotations

import click

from cli.common import run, settings
from shared.db import migrate


@click.group()
def db() -> None:
    """The database schema."""


@db.command()
@click.option(
    "--create",
    is_flag=True,
    help="Create the database first if it does not exist (a new installation).",
)
def upgrade(create: bool) -> None:
    """Apply every pending migration to the database named in VI_DATABASE_URL.

    The database must exist, so a mistyped name is an error rather than a new, empty
    database; --create creates it. Safe to run twice, or from two processes at once.
    """
    dsn = settings().database_url

    async def go() -> tuple[bool, list[migrate.Migration]]:
        created = create and await migrate.create_database_if_missing(dsn)
        return created, await migrate.upgrade(dsn)

    created, applied = run(go())
    if created:
        click.echo(f"created database {migrate.database_name(dsn)}")
    for m in applied:
        click.echo(f"applied {m.version:04d}_{m.name}")
    click.echo(f"schema is at version {migrate.latest_version()}")
