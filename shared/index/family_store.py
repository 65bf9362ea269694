"""SQL for family facts, pending lookups and family matches. Every function runs on
the caller's connection, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.db.pool import Conn
from shared.index.family import FamilyFacts, FamilyPair


def _facts_from_row(row: asyncpg.Record) -> FamilyFacts:
    return FamilyFacts(
        frozenset(bytes(h) for h in row["parent_hashes"]),
        bytes(row["address_hash"]) if row["address_hash"] is not None else None,
        row["institutional"],
    )


async def store_facts(conn: Conn, facts: Mapping[int, FamilyFacts], now: datetime) -> None:
    """The facts (by youth id) replace whatever was stored for those youths; one
    statement for a batch. The parents go as (youth, hash) pairs, in hash order, as a
    youth has any number of them."""
    if not facts:
        return
    ids = sorted(facts)
    parents = [(y, h) for y in ids for h in sorted(facts[y].parents)]
    await conn.execute(
        """INSERT INTO family_facts (youth_id, parent_hashes, address_hash, institutional,
               received_at)
           SELECT f.youth_id,
               ARRAY(SELECT p.hash
                     FROM unnest($5::bigint[], $6::bytea[]) WITH ORDINALITY
                         AS p(youth_id, hash, n)
                     WHERE p.youth_id = f.youth_id ORDER BY p.n),
               f.address_hash, f.institutional, $4
           FROM unnest($1::bigint[], $2::bytea[], $3::boolean[])
               AS f(youth_id, address_hash, institutional)
           ON CONFLICT (youth_id) DO UPDATE SET parent_hashes = EXCLUDED.parent_hashes,
               address_hash = EXCLUDED.address_hash, institutional = EXCLUDED.institutional,
               received_at = EXCLUDED.received_at""",
        ids,
        [facts[y].address for y in ids],
        [facts[y].institutional for y in ids],
        now,
        [y for y, _ in parents],
        [h for _, h in parents],
    )


async def facts_of(conn: Conn, youth_ids: Sequence[int]) -> dict[int, FamilyFacts]:
    rows = await conn.fetch(
        """SELECT youth_id, parent_hashes, address_hash, institutional FROM family_facts
           WHERE youth_id = ANY($1::bigint[])""",
        list(youth_ids),
    )
    return {r["youth_id"]: _facts_from_row(r) for r in rows}


async def lock_family_keys(conn: Conn, keys: Sequence[bytes]) -> None:
    """Serialise every transaction that looks for relatives through one of these
    hashes, until commit: of two siblings' transactions, the second sees the first's
    facts and meldingen. Locks are taken in key order (no deadlock between two
    transactions), always after the youths' row locks."""
    lock_ids = sorted({int.from_bytes(k[:8], "big", signed=True) for k in keys})
    if lock_ids:
        await conn.execute(
            """SELECT pg_advisory_xact_lock(k)
               FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k OFFSET 0) ordered""",
            lock_ids,
        )


async def relatives_of(
    conn: Conn, youth_ids: Sequence[int]
) -> dict[int, list[tuple[int, FamilyFacts]]]:
    """For each of the youths, by their stored facts, the other youths whose facts share
    a parent or the address with them (in youth order); one statement for a batch.
    Youths without relatives are left out."""
    rows = await conn.fetch(
        """SELECT own.youth_id AS asking, f.youth_id, f.parent_hashes, f.address_hash,
               f.institutional
           FROM family_facts own
           CROSS JOIN LATERAL (
               SELECT * FROM family_facts f
               WHERE f.youth_id <> own.youth_id
                 AND (f.parent_hashes && own.parent_hashes
                      OR (own.address_hash IS NOT NULL AND f.address_hash = own.address_hash))
           ) f
           WHERE own.youth_id = ANY($1::bigint[])
           ORDER BY own.youth_id, f.youth_id""",
        list(youth_ids),
    )
    found: dict[int, list[tuple[int, FamilyFacts]]] = {}
    for r in rows:
        found.setdefault(r["asking"], []).append((r["youth_id"], _facts_from_row(r)))
    return found


async def record_pairs(
    conn: Conn, pairs: Sequence[FamilyPair], now: datetime
) -> list[tuple[uuid.UUID, FamilyPair]]:
    """Store the pairs not signalled before; returns those stored now, with their id.
    The unique pair makes this exact under concurrency: of two transactions finding
    one pair, one stores it."""
    unique = {(p.low.id, p.high.id): p for p in pairs}
    if not unique:
        return []
    ids = {key: uuid.uuid4() for key in unique}
    rows = await conn.fetch(
        """INSERT INTO family_match (id, melding_low, melding_high, relation, formed_at)
           SELECT id, low, high, relation, $5
           FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[])
               AS p(id, low, high, relation)
           ON CONFLICT (melding_low, melding_high) DO NOTHING
           RETURNING id, melding_low, melding_high""",
        [ids[k] for k in unique],
        [k[0] for k in unique],
        [k[1] for k in unique],
        [p.relation for p in unique.values()],
        now,
    )
    return [(r["id"], unique[(r["melding_low"], r["melding_high"])]) for r in rows]


@dataclass(frozen=True)
class PendingLookup:
    youth_id: int
    lookup_id: uuid.UUID
    sealed_bsn: bytes
    sent_at: datetime


async def add_lookups(
    conn: Conn, lookups: Sequence[tuple[int, uuid.UUID, bytes]], now: datetime
) -> set[int]:
    """Record (youth_id, lookup_id, sealed BSN) lookups, one statement for a batch, for
    the youths that have none pending; returns the youths recorded now."""
    if not lookups:
        return set()
    rows = await conn.fetch(
        """INSERT INTO family_lookup (youth_id, lookup_id, sealed_bsn, sent_at)
           SELECT youth_id, lookup_id, sealed_bsn, $4
           FROM unnest($1::bigint[], $2::uuid[], $3::bytea[])
               AS l(youth_id, lookup_id, sealed_bsn)
           ON CONFLICT (youth_id) DO NOTHING RETURNING youth_id""",
        [youth for youth, _, _ in lookups],
        [lookup for _, lookup, _ in lookups],
        [sealed for _, _, sealed in lookups],
        now,
    )
    return {r["youth_id"] for r in rows}


async def pending_lookup(conn: Conn, youth_id: int) -> PendingLookup | None:
    row = await conn.fetchrow(
        "SELECT youth_id, lookup_id, sealed_bsn, sent_at FROM family_lookup WHERE youth_id = $1",
        youth_id,
    )
    if row is None:
        return None
    return PendingLookup(
        row["youth_id"], row["lookup_id"], bytes(row["sealed_bsn"]), row["sent_at"]
    )


async def lookups_sent_by(
    conn: Conn, sent_by: datetime, after: int, limit: int
) -> list[asyncpg.Record]:
    """Pending lookups last sent on or before `sent_by`, one page in keyset order of
    `id` (the youth's id) after `after` (see the retention rules' pages in repository)."""
    return await conn.fetch(
        """SELECT youth_id AS id, youth_id FROM family_lookup WHERE youth_id > $1
           AND sent_at <= $3 ORDER BY youth_id LIMIT $2""",
        after,
        limit,
        sent_by,
    )


async def lookup_sent_again(conn: Conn, youth_id: int, now: datetime) -> None:
    await conn.execute("UPDATE family_lookup SET sent_at = $2 WHERE youth_id = $1", youth_id, now)


async def drop_lookups(conn: Conn, youth_ids: Sequence[int]) -> None:
    if youth_ids:
        await conn.execute(
            "DELETE FROM family_lookup WHERE youth_id = ANY($1::bigint[])", list(youth_ids)
        )


async def youths_without_facts(conn: Conn, youth_ids: Sequence[int]) -> list[int]:
    """Those of the youths that exist and have no family facts stored."""
    rows = await conn.fetch(
        """SELECT y.id FROM youth y WHERE y.id = ANY($1::bigint[])
           AND NOT EXISTS (SELECT 1 FROM family_facts f WHERE f.youth_id = y.id)
           ORDER BY y.id""",
        list(youth_ids),
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True)
class YouthRow:
    identity_hash: bytes
    municipality: str


async def youth_rows(conn: Conn, youth_ids: Sequence[int]) -> dict[int, YouthRow]:
    rows = await conn.fetch(
        "SELECT id, identity_hash, municipality FROM youth WHERE id = ANY($1::bigint[])",
        list(youth_ids),
    )
    return {r["id"]: YouthRow(bytes(r["identity_hash"]), r["municipality"]) for r in rows}


@dataclass(frozen=True)
class FamilyRecord:
    """What is stored on a youth's family, row by row, for an access request."""

    facts: dict[str, Any] | None
    lookup: dict[str, Any] | None
    # The family matches of the youth's meldingen: each with its own melding_ref and
    # the other melding's partner_id.
    matches: list[dict[str, Any]]


async def family_record(conn: Conn, youth_id: int) -> FamilyRecord:
    facts = await conn.fetchrow(
        """SELECT parent_hashes, address_hash, institutional, received_at FROM family_facts
           WHERE youth_id = $1""",
        youth_id,
    )
    lookup = await conn.fetchrow(
        "SELECT lookup_id, sent_at FROM family_lookup WHERE youth_id = $1", youth_id
    )
    matches = await conn.fetch(
        """SELECT f.id, f.relation, f.formed_at, own.melding_ref, other.partner_id
           FROM melding own
           JOIN family_match f ON own.id IN (f.melding_low, f.melding_high)
           JOIN melding other ON other.id = CASE WHEN f.melding_low = own.id
                                            THEN f.melding_high ELSE f.melding_low END
           WHERE own.youth_id = $1 ORDER BY f.formed_at, f.id""",
        youth_id,
    )
    return FamilyRecord(
        dict(facts) if facts else None,
        dict(lookup) if lookup else None,
        [dict(m) for m in matches],
    )
