"""A new region's tables start empty and grow by the hundred thousand during its bulk
load. Statements prepared early must not keep the plan they got on an empty table."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.db.pool import Conn, create_pool
from shared.index.repository import meldingen_of_youths
from tests.support import RegionUnderTest

ROWS = 20_000


async def seq_scans_of_melding(conn: Conn) -> int:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    return int(
        await conn.fetchval("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'melding'")
    )


async def test_a_statement_prepared_on_empty_tables_uses_the_index_once_they_fill(
    test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    pool = await create_pool(test_region.settings.database_url, size=1)
    try:
        async with pool.acquire() as conn:
            # The same connection throughout, as a service's pool would use it: more
            # than the five runs after which PostgreSQL may switch to a cached plan.
            for _ in range(8):
                assert await meldingen_of_youths(conn, [1, 2, 3]) == {}
            youth_ids = await db.fetch(
                """INSERT INTO youth (identity_hash, has_bsn, birth_date, municipality)
                   SELECT sha256(i::text::bytea), true, '2012-03-04', '0363'
                   FROM generate_series(1, $1) i RETURNING id""",
                ROWS,
            )
            await db.execute(
                """INSERT INTO melding (youth_id, partner_id, melding_ref, state, reported_at,
                       reporter_name, reporter_email, expires_on, inform_targets)
                   SELECT y, 'school', 'R-' || y, 'active', now(), 'J. Jansen',
                       'j.jansen@school.example', '2030-01-01', '{}'
                   FROM unnest($1::bigint[]) AS y""",
                [r["id"] for r in youth_ids],
            )
            before = await seq_scans_of_melding(conn)
            wanted = [r["id"] for r in youth_ids[:3]]
            for _ in range(5):
                found = await meldingen_of_youths(conn, wanted)
                assert sorted(found) == sorted(wanted)
            assert await seq_scans_of_melding(conn) == before
            assert await conn.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    finally:
        await pool.close()
