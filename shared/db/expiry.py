"""Rows whose term is over: deleted in bounded batches, by the database's clock or a
given moment. The table and column names are the caller's constants, never input."""

from __future__ import annotations

from datetime import datetime

from shared.db.pool import Conn


async def database_now(conn: Conn) -> datetime:
    now: datetime = await conn.fetchval("SELECT now()")
    return now


async def delete_older_than(
    conn: Conn, table: str, column: str, cutoff: datetime, limit: int
) -> int:
    """Delete at most `limit` rows of `table` whose `column` is before `cutoff`; how
    many went (fewer than `limit`: none are left)."""
    status = await conn.execute(
        f"DELETE FROM {table} WHERE ctid IN "  # noqa: S608 - constant names
        f"(SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    return int(status.split()[-1])
