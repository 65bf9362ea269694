"""`verwijsindex db ...`"""

from __future__ import annotations

import asyncpg
import click

from cli.common import run, settings
from shared.db import migrate


@click.group()
def db() -> None:
    """The database schema."""


@db.command()
def upgrade() -> None:
    """Create the database if needed and apply every pending migration.

    Safe to run twice, or from two processes at once.
    """
    dsn = settings().database_url

    async def go() -> list[migrate.Migration]:
        await migrate.create_database_if_missing(dsn)
        return await migrate.upgrade(dsn)

    try:
        applied = run(go())
    except asyncpg.PostgresError as exc:
        raise click.ClickException(f"migration failed: {exc}") from None
    if applied:
        for m in applied:
            click.echo(f"applied {m.version:04d}_{m.name}")
    click.echo(f"schema is at version {migrate.latest_version()}")
