"""Numbered SQL migrations (`migrations/NNNN_name.sql`), applied in order.

`upgrade` takes a session advisory lock, so two processes running it at once apply
each migration exactly once; running it again is a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from shared.db.pool import Conn

_LOCK_KEY = 7_140_001  # arbitrary, fixed: serialises concurrent upgrades
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


class SchemaOutOfDate(RuntimeError):
    pass


class MigrationFailed(RuntimeError):
    """A migration the database refused; nothing of it was applied."""


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("shared.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


async def _applied(conn: Conn) -> set[int]:
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}


async def upgrade(dsn: str) -> list[Migration]:
    """Apply every pending migration; returns the ones applied by this call."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = await _applied(conn)
            applied = []
            for migration in available_migrations():
                if migration.version in done:
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
                except asyncpg.PostgresError as exc:
                    raise MigrationFailed(
                        f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                    ) from exc
                applied.append(migration)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def ensure_current(conn: Conn) -> None:
    """Refuse to run against a schema older (or newer) than this code expects."""
    have = max(await _applied(conn), default=0)
    want = latest_version()
    if have < want:
        raise SchemaOutOfDate(
            f"database schema is at version {have}, this code needs {want}: "
            "run `verwijsindex db upgrade` first"
        )
    if have > want:
        raise SchemaOutOfDate(
            f"database schema is at version {have}, newer than this code ({want}): "
            "deploy the newer release of the services"
        )


def database_name(dsn: str) -> str:
    """The database a connection URL names (its path)."""
    return unquote(urlsplit(dsn).path.lstrip("/"))


async def create_database_if_missing(dsn: str) -> bool:
    """Create the database named in `dsn` (connecting to `postgres` to do so); True if
    this call created it. Only `db upgrade --create` does this: a mistyped name must
    not become a new, empty database."""
    name = database_name(dsn)
    if not name:
        return False
    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    try:
        if await admin.fetchval("SELECT true FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await admin.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.exceptions.DuplicateDatabaseError:
            return False  # created by a concurrent upgrade
        return True
    finally:
        await admin.close()
