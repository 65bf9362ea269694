"""SQL for meldingen, youths and match groups. Every function runs on the caller's
connection, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from shared.db.pool import Conn
from shared.index.domain import Contact, StoredMelding

MELDING_COLUMNS = """id, partner_id, melding_ref, state, registered_at, reporter_name,
    reporter_email, reporter_phone, archive_signalled"""


def melding_from_row(row: asyncpg.Record) -> StoredMelding:
    return StoredMelding(
        id=row["id"],
        partner_id=row["partner_id"],
        melding_ref=row["melding_ref"],
        active=row["state"] == "active",
        registered_at=row["registered_at"],
        reporter=Contact(row["reporter_name"], row["reporter_email"], row["reporter_phone"]),
        archive_signalled=row["archive_signalled"],
    )


@dataclass(frozen=True)
class Youth:
    id: int
    identity_hash: bytes
    municipality: str
    birth_date: date


@dataclass(frozen=True)
class Group:
    id: uuid.UUID
    lead_melding_id: int | None


async def lock_or_create_youth(
    conn: Conn, identity_hash: bytes, *, has_bsn: bool, birth_date: date, municipality: str
) -> Youth:
    """The youth row, locked for this transaction: all work on one youth is serialised.

    The no-op DO UPDATE is what takes the row lock on an existing youth (DO NOTHING
    would not, and two newcomers could then both miss each other); for a new youth a
    second inserter waits on the first one's uncommitted row and then locks it."""
    row = await conn.fetchrow(
        """INSERT INTO youth (identity_hash, has_bsn, birth_date, municipality)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (identity_hash) DO UPDATE SET identity_hash = EXCLUDED.identity_hash
           RETURNING id, identity_hash, municipality, birth_date""",
        identity_hash,
        has_bsn,
        birth_date,
        municipality,
    )
    assert row is not None
    return Youth(row["id"], row["identity_hash"], row["municipality"], row["birth_date"])


async def lock_youth(conn: Conn, youth_id: int) -> Youth | None:
    row = await conn.fetchrow(
        "SELECT id, identity_hash, municipality, birth_date FROM youth WHERE id = $1 FOR UPDATE",
        youth_id,
    )
    return (
        Youth(row["id"], row["identity_hash"], row["municipality"], row["birth_date"])
        if row
        else None
    )


async def lock_youth_by_hash(conn: Conn, identity_hash: bytes) -> Youth | None:
    row = await conn.fetchrow(
        """SELECT id, identity_hash, municipality, birth_date FROM youth
           WHERE identity_hash = $1 FOR UPDATE""",
        identity_hash,
    )
    return (
        Youth(row["id"], row["identity_hash"], row["municipality"], row["birth_date"])
        if row
        else None
    )


async def update_youth_facts(
    conn: Conn, youth_id: int, *, birth_date: date, municipality: str
) -> None:
    # Two reporters may give different birth dates for one BSN: keep the earlier, so
    # the 23rd-birthday purge never comes late.
    await conn.execute(
        """UPDATE youth SET municipality = $2, birth_date = LEAST(birth_date, $3)
           WHERE id = $1""",
        youth_id,
        municipality,
        birth_date,
    )


async def refs_used(conn: Conn, refs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (partner_id, melding_ref) pairs used by a stored melding, or by one since
    purged (kept as a hash by a trigger); one statement for a whole batch."""
    if not refs:
        return set()
    rows = await conn.fetch(
        """SELECT k.partner_id, k.melding_ref
           FROM unnest($1::text[], $2::text[]) AS k(partner_id, melding_ref)
           WHERE EXISTS (SELECT 1 FROM melding m
                         WHERE m.partner_id = k.partner_id AND m.melding_ref = k.melding_ref)
              OR EXISTS (SELECT 1 FROM melding_ref_used u
                         WHERE u.partner_id = k.partner_id
                           AND u.ref_hash = sha256(convert_to(k.melding_ref, 'UTF8')))""",
        [partner for partner, _ in refs],
        [ref for _, ref in refs],
    )
    return {(r["partner_id"], r["melding_ref"]) for r in rows}


async def meldingen_of_youth(conn: Conn, youth_id: int) -> list[StoredMelding]:
    rows = await conn.fetch(
        f"SELECT {MELDING_COLUMNS} FROM melding WHERE youth_id = $1 ORDER BY id",  # noqa: S608
        youth_id,
    )
    return [melding_from_row(r) for r in rows]


@dataclass(frozen=True)
class MeldingRow:
    melding: StoredMelding
    youth_id: int
    reported_at: datetime
    inform_targets: list[str]


async def find_melding(conn: Conn, partner_id: str, melding_ref: str) -> MeldingRow | None:
    row = await conn.fetchrow(
        f"""SELECT {MELDING_COLUMNS}, youth_id, reported_at, inform_targets
            FROM melding WHERE partner_id = $1 AND melding_ref = $2""",  # noqa: S608
        partner_id,
        melding_ref,
    )
    if row is None:
        return None
    return MeldingRow(
        melding_from_row(row), row["youth_id"], row["reported_at"], list(row["inform_targets"])
    )


async def insert_melding(
    conn: Conn,
    *,
    youth_id: int,
    partner_id: str,
    melding_ref: str,
    reported_at: datetime,
    reporter: Contact,
    expires_on: date,
    inform_targets: Sequence[str],
) -> StoredMelding:
    row = await conn.fetchrow(
        f"""INSERT INTO melding (youth_id, partner_id, melding_ref, state, reported_at,
                reporter_name, reporter_email, reporter_phone, expires_on, inform_targets)
            VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9)
            RETURNING {MELDING_COLUMNS}""",  # noqa: S608
        youth_id,
        partner_id,
        melding_ref,
        reported_at,
        reporter.name,
        reporter.email,
        reporter.phone,
        expires_on,
        list(inform_targets),
    )
    assert row is not None
    return melding_from_row(row)


async def mark_archive_signalled(conn: Conn, melding_ids: Sequence[int]) -> None:
    if melding_ids:
        await conn.execute(
            "UPDATE melding SET archive_signalled = true WHERE id = ANY($1::bigint[])",
            list(melding_ids),
        )


async def open_group(conn: Conn, youth_id: int) -> Group | None:
    row = await conn.fetchrow(
        "SELECT id, lead_melding_id FROM match_group WHERE youth_id = $1 AND ended_at IS NULL",
        youth_id,
    )
    return Group(row["id"], row["lead_melding_id"]) if row else None


async def create_group(
    conn: Conn, youth_id: int, now: datetime, *, live: bool, lead_melding_id: int | None = None
) -> uuid.UUID:
    """A live group stays open while two or more meldingen are active. A match with
    archived meldingen only is recorded as a group that ends as it forms. A lead given
    here is set as `set_lead` would set it."""
    match_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO match_group
               (id, youth_id, formed_at, lead_needed_since, ended_at, lead_melding_id, lead_since)
           VALUES ($1, $2, $3, $3, $4, $5,
                   CASE WHEN $5::bigint IS NULL THEN NULL ELSE $3::timestamptz END)""",
        match_id,
        youth_id,
        now,
        None if live else now,
        lead_melding_id,
    )
    return match_id


async def add_members(conn: Conn, match_id: uuid.UUID, melding_ids: Sequence[int]) -> None:
    await conn.execute(
        """INSERT INTO match_member (match_id, melding_id)
           SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING""",
        match_id,
        list(melding_ids),
    )


async def active_members(conn: Conn, match_id: uuid.UUID) -> list[StoredMelding]:
    rows = await conn.fetch(
        f"""SELECT {MELDING_COLUMNS} FROM melding m
            JOIN match_member mm ON mm.melding_id = m.id
            WHERE mm.match_id = $1 AND m.state = 'active' ORDER BY m.registered_at, m.id""",  # noqa: S608
        match_id,
    )
    return [melding_from_row(r) for r in rows]


async def set_lead(conn: Conn, match_id: uuid.UUID, melding_id: int | None, now: datetime) -> None:
    """Set or clear the lead. Clearing starts a new deadline period."""
    await conn.execute(
        """UPDATE match_group SET lead_melding_id = $2,
               lead_since = CASE WHEN $2::bigint IS NULL THEN NULL ELSE $3::timestamptz END,
               lead_needed_since = CASE WHEN $2::bigint IS NULL THEN $3::timestamptz
                                        ELSE lead_needed_since END,
               escalated_at = CASE WHEN $2::bigint IS NULL THEN NULL ELSE escalated_at END
           WHERE id = $1""",
        match_id,
        melding_id,
        now,
    )


async def end_group(conn: Conn, match_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        "UPDATE match_group SET ended_at = $2, lead_melding_id = NULL WHERE id = $1", match_id, now
    )


async def group_of_melding(conn: Conn, melding_id: int) -> Group | None:
    row = await conn.fetchrow(
        """SELECT g.id, g.lead_melding_id FROM match_group g
           JOIN match_member mm ON mm.match_id = g.id
           WHERE mm.melding_id = $1 AND g.ended_at IS NULL""",
        melding_id,
    )
    return Group(row["id"], row["lead_melding_id"]) if row else None


async def youth_municipality(conn: Conn, youth_id: int) -> str:
    return str(await conn.fetchval("SELECT municipality FROM youth WHERE id = $1", youth_id))


async def delete_youth_if_empty(conn: Conn, youth_id: int) -> None:
    """Purged means gone: a youth without meldingen leaves no row behind."""
    await conn.execute(
        """DELETE FROM youth WHERE id = $1
           AND NOT EXISTS (SELECT 1 FROM melding WHERE youth_id = $1)""",
        youth_id,
    )
