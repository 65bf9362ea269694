"""SQL for meldingen, youths and match groups. Every function runs on the caller's
connection, inside the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from shared.db.pool import Conn
from shared.index.decisions import InformDue
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


def youth_from_row(row: asyncpg.Record) -> Youth:
    return Youth(row["id"], row["identity_hash"], row["municipality"], row["birth_date"])


@dataclass(frozen=True)
class Group:
    id: uuid.UUID
    lead_melding_id: int | None


@dataclass(frozen=True)
class NewYouth:
    """A youth as a registration describes it, for `lock_or_create_youths`."""

    identity_hash: bytes
    has_bsn: bool
    birth_date: date
    municipality: str


async def lock_or_create_youths(
    conn: Conn, youths: Sequence[NewYouth]
) -> dict[bytes, tuple[Youth, bool]]:
    """The youth rows, locked for this transaction, by identity hash, each with whether
    this statement created it. All work on one youth is serialised by this lock.

    The rows are locked in identity order, so two transactions locking overlapping sets
    never deadlock on each other. The no-op DO UPDATE is what takes the row lock on an
    existing youth (DO NOTHING would not, and two newcomers could then both miss each
    other); for a new youth a second inserter waits on the first one's uncommitted row
    and then locks it. One row per identity: the first description given wins."""
    unique: dict[bytes, NewYouth] = {}
    for youth in youths:
        unique.setdefault(youth.identity_hash, youth)
    rows = sorted(unique.values(), key=lambda y: y.identity_hash)
    found = await conn.fetch(
        """INSERT INTO youth (identity_hash, has_bsn, birth_date, municipality)
           SELECT * FROM unnest($1::bytea[], $2::boolean[], $3::date[], $4::text[])
               AS y(identity_hash, has_bsn, birth_date, municipality)
           ORDER BY identity_hash
           ON CONFLICT (identity_hash) DO UPDATE SET identity_hash = EXCLUDED.identity_hash
           RETURNING id, identity_hash, municipality, birth_date, (xmax = 0) AS created""",
        [y.identity_hash for y in rows],
        [y.has_bsn for y in rows],
        [y.birth_date for y in rows],
        [y.municipality for y in rows],
    )
    return {
        r["identity_hash"]: (
            youth_from_row(r),
            r["created"],
        )
        for r in found
    }


async def lock_youth(conn: Conn, youth_id: int, *, skip_locked: bool = False) -> Youth | None:
    """The youth, locked for this transaction; None when there is no such youth, or
    (with `skip_locked`) when another transaction holds its lock."""
    skip = " SKIP LOCKED" if skip_locked else ""
    row = await conn.fetchrow(
        "SELECT id, identity_hash, municipality, birth_date FROM youth"  # noqa: S608
        f" WHERE id = $1 FOR UPDATE{skip}",
        youth_id,
    )
    return youth_from_row(row) if row else None


async def youth_exists(conn: Conn, youth_id: int) -> bool:
    return bool(await conn.fetchval("SELECT true FROM youth WHERE id = $1", youth_id))


async def lock_youth_by_hash(conn: Conn, identity_hash: bytes) -> Youth | None:
    row = await conn.fetchrow(
        """SELECT id, identity_hash, municipality, birth_date FROM youth
           WHERE identity_hash = $1 FOR UPDATE""",
        identity_hash,
    )
    return youth_from_row(row) if row else None


async def lock_youths_by_hash(conn: Conn, identity_hashes: Sequence[bytes]) -> dict[bytes, Youth]:
    """The youths that exist among these identities, locked for this transaction in
    identity order (as `lock_or_create_youths` locks them), by identity hash."""
    rows = await conn.fetch(
        """SELECT id, identity_hash, municipality, birth_date FROM youth
           WHERE identity_hash = ANY($1::bytea[]) ORDER BY identity_hash FOR UPDATE""",
        sorted(set(identity_hashes)),
    )
    return {bytes(r["identity_hash"]): youth_from_row(r) for r in rows}


async def update_youths(conn: Conn, youths: Sequence[Youth]) -> None:
    """Write the youths' municipality and birth date as given."""
    if youths:
        await conn.execute(
            """UPDATE youth SET municipality = v.municipality, birth_date = v.birth_date
               FROM unnest($1::bigint[], $2::text[], $3::date[])
                   AS v(id, municipality, birth_date)
               WHERE youth.id = v.id""",
            [y.id for y in youths],
            [y.municipality for y in youths],
            [y.birth_date for y in youths],
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
    return (await meldingen_of_youths(conn, [youth_id])).get(youth_id, [])


async def meldingen_of_youths(
    conn: Conn, youth_ids: Sequence[int]
) -> dict[int, list[StoredMelding]]:
    """Each youth's meldingen (active and archived) in id order; youths without any
    are left out."""
    rows = await conn.fetch(
        f"""SELECT {MELDING_COLUMNS}, youth_id FROM melding
            WHERE youth_id = ANY($1::bigint[]) ORDER BY id""",  # noqa: S608
        list(youth_ids),
    )
    found: dict[int, list[StoredMelding]] = {}
    for row in rows:
        found.setdefault(row["youth_id"], []).append(melding_from_row(row))
    return found


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


async def reserve_melding_ids(conn: Conn, count: int) -> tuple[datetime, list[int]]:
    """`count` new melding ids, ascending, and the transaction's timestamp (what
    `registered_at` defaults to), so meldingen can be decided on before they are
    inserted together by `insert_meldingen`."""
    row = await conn.fetchrow(
        """SELECT now() AS now, ARRAY(SELECT nextval(pg_get_serial_sequence('melding', 'id'))
                                      FROM generate_series(1, $1)) AS ids""",
        count,
    )
    assert row is not None
    return row["now"], list(row["ids"])


@dataclass(frozen=True)
class NewMelding:
    """An active melding to insert, its id reserved by `reserve_melding_ids`."""

    melding: StoredMelding
    youth_id: int
    reported_at: datetime
    expires_on: date
    inform_targets: Sequence[str]


async def insert_meldingen(conn: Conn, meldingen: Sequence[NewMelding]) -> None:
    if not meldingen:
        return
    # unnest cannot take a ragged text[][]: each row's targets travel as one string.
    targets = [",".join(m.inform_targets) for m in meldingen]
    assert all("," not in t for m in meldingen for t in m.inform_targets)
    await conn.execute(
        """INSERT INTO melding (id, youth_id, partner_id, melding_ref, state, reported_at,
               registered_at, reporter_name, reporter_email, reporter_phone, expires_on,
               inform_targets)
           SELECT id, youth_id, partner_id, melding_ref, 'active', reported_at,
               registered_at, reporter_name, reporter_email, reporter_phone, expires_on,
               string_to_array(targets, ',')
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],
                       $5::timestamptz[], $6::timestamptz[], $7::text[], $8::text[],
                       $9::text[], $10::date[], $11::text[])
               AS m(id, youth_id, partner_id, melding_ref, reported_at, registered_at,
                    reporter_name, reporter_email, reporter_phone, expires_on, targets)""",
        [m.melding.id for m in meldingen],
        [m.youth_id for m in meldingen],
        [m.melding.partner_id for m in meldingen],
        [m.melding.melding_ref for m in meldingen],
        [m.reported_at for m in meldingen],
        [m.melding.registered_at for m in meldingen],
        [m.melding.reporter.name for m in meldingen],
        [m.melding.reporter.email for m in meldingen],
        [m.melding.reporter.phone for m in meldingen],
        [m.expires_on for m in meldingen],
        targets,
    )


async def mark_archive_signalled(conn: Conn, melding_ids: Sequence[int]) -> None:
    if melding_ids:
        await conn.execute(
            "UPDATE melding SET archive_signalled = true WHERE id = ANY($1::bigint[])",
            list(melding_ids),
        )


async def archive_melding(
    conn: Conn, melding_id: int, *, ended_at: datetime, reason: str, purge_on: date
) -> None:
    """Into the archive until `purge_on`: it may signal once more, and what was
    recorded on informing the family goes."""
    await conn.execute(
        """UPDATE melding SET state = 'archived', ended_at = $2, end_reason = $3,
               purge_on = $4, archive_signalled = false,
               informed = NULL, informed_on = NULL, deferred_reason = NULL
           WHERE id = $1""",
        melding_id,
        ended_at,
        reason,
        purge_on,
    )


async def delete_melding(conn: Conn, melding_id: int) -> None:
    await conn.execute("DELETE FROM melding WHERE id = $1", melding_id)


async def delete_youth(conn: Conn, youth_id: int) -> None:
    """Everything stored on a youth. Explicit order: groups (and with them their
    memberships), meldingen, the youth."""
    await conn.execute("DELETE FROM match_group WHERE youth_id = $1", youth_id)
    await conn.execute("DELETE FROM melding WHERE youth_id = $1", youth_id)
    await conn.execute("DELETE FROM youth WHERE id = $1", youth_id)


async def delete_empty_ended_groups(conn: Conn, youth_id: int) -> None:
    """The youth's ended match groups that no longer have any member."""
    await conn.execute(
        """DELETE FROM match_group g WHERE g.youth_id = $1 AND g.ended_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM match_member mm WHERE mm.match_id = g.id)""",
        youth_id,
    )


@dataclass(frozen=True)
class InformedBefore:
    """What was recorded on informing the family before a new record replaced it."""

    was_informed: bool
    was_deferred: bool
    registered_at: datetime


async def record_informed(
    conn: Conn,
    melding_id: int,
    *,
    informed: Sequence[str] | None,
    informed_on: date | None,
    deferred_reason: str | None,
) -> InformedBefore:
    """Replace what is recorded on informing the family (a confirmation or a deferral)."""
    row = await conn.fetchrow(
        """UPDATE melding m SET informed = $2, informed_on = $3, deferred_reason = $4
           FROM (SELECT informed IS NOT NULL AS was_informed,
                        deferred_reason IS NOT NULL AS was_deferred
                 FROM melding WHERE id = $1) old
           WHERE m.id = $1
           RETURNING old.was_informed, old.was_deferred, m.registered_at""",
        melding_id,
        list(informed) if informed else None,
        informed_on,
        deferred_reason,
    )
    assert row is not None
    return InformedBefore(row["was_informed"], row["was_deferred"], row["registered_at"])


async def claim_reminder(conn: Conn, melding_id: int, now: datetime) -> InformDue | None:
    """Mark an active melding with nothing recorded on informing as reminded; its
    reminder, or None when it is not (or no longer) due one."""
    row = await conn.fetchrow(
        """UPDATE melding SET inform_reminded_at = $2
           WHERE id = $1 AND state = 'active' AND informed IS NULL
             AND deferred_reason IS NULL AND inform_reminded_at IS NULL
           RETURNING partner_id, melding_ref, reporter_email, inform_targets""",
        melding_id,
        now,
    )
    if row is None:
        return None
    return InformDue(
        row["partner_id"], row["melding_ref"], row["reporter_email"], list(row["inform_targets"])
    )


async def expiring_meldingen(
    conn: Conn, youth_id: int, on: date
) -> list[tuple[StoredMelding, date]]:
    """The youth's active meldingen that expire on or before `on`, with their expiry date."""
    rows = await conn.fetch(
        f"""SELECT {MELDING_COLUMNS}, expires_on FROM melding
            WHERE youth_id = $1 AND state = 'active' AND expires_on <= $2
            ORDER BY id""",  # noqa: S608
        youth_id,
        on,
    )
    return [(melding_from_row(row), row["expires_on"]) for row in rows]


async def purge_archived(conn: Conn, melding_id: int, on: date) -> str | None:
    """Delete an archived melding whose term is over by `on`; its melding_ref, or None
    when there is no such melding (any more)."""
    ref: str | None = await conn.fetchval(
        """DELETE FROM melding WHERE id = $1 AND state = 'archived' AND purge_on <= $2
           RETURNING melding_ref""",
        melding_id,
        on,
    )
    return ref


async def open_groups(conn: Conn, youth_ids: Sequence[int]) -> dict[int, Group]:
    """The open match group of each youth that has one."""
    rows = await conn.fetch(
        """SELECT youth_id, id, lead_melding_id FROM match_group
           WHERE youth_id = ANY($1::bigint[]) AND ended_at IS NULL""",
        list(youth_ids),
    )
    return {r["youth_id"]: Group(r["id"], r["lead_melding_id"]) for r in rows}


@dataclass(frozen=True)
class NewGroup:
    """A live group stays open while two or more meldingen are active. A match with
    archived meldingen only is recorded as a group that ends as it forms. A lead given
    here is set as `set_lead` would set it."""

    id: uuid.UUID
    youth_id: int
    live: bool
    lead_melding_id: int | None


async def create_groups(conn: Conn, groups: Sequence[NewGroup], now: datetime) -> None:
    if groups:
        await conn.execute(
            """INSERT INTO match_group (id, youth_id, formed_at, lead_needed_since, ended_at,
                   lead_melding_id, lead_since)
               SELECT id, youth_id, $5::timestamptz, $5::timestamptz,
                   CASE WHEN live THEN NULL ELSE $5::timestamptz END,
                   lead, CASE WHEN lead IS NULL THEN NULL ELSE $5::timestamptz END
               FROM unnest($1::uuid[], $2::bigint[], $3::boolean[], $4::bigint[])
                   AS g(id, youth_id, live, lead)""",
            [g.id for g in groups],
            [g.youth_id for g in groups],
            [g.live for g in groups],
            [g.lead_melding_id for g in groups],
            now,
        )


async def add_members(conn: Conn, members: Sequence[tuple[uuid.UUID, int]]) -> None:
    """Add (match_id, melding_id) memberships; one already there is left as it is."""
    if members:
        await conn.execute(
            """INSERT INTO match_member (match_id, melding_id)
               SELECT * FROM unnest($1::uuid[], $2::bigint[]) ON CONFLICT DO NOTHING""",
            [match_id for match_id, _ in members],
            [melding_id for _, melding_id in members],
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


async def lock_live_group(conn: Conn, match_id: uuid.UUID) -> tuple[Group, Youth] | None:
    """The live match group with this id and its youth, the youth's row locked; None
    when no group with this id is live (read again under the lock, so a group that
    ended meanwhile is not found)."""
    youth_id = await conn.fetchval(
        "SELECT youth_id FROM match_group WHERE id = $1 AND ended_at IS NULL", match_id
    )
    youth = await lock_youth(conn, youth_id) if youth_id is not None else None
    if youth is None:
        return None
    group = (await open_groups(conn, [youth.id])).get(youth.id)
    return (group, youth) if group is not None and group.id == match_id else None


async def claim_escalation(
    conn: Conn, match_id: uuid.UUID, now: datetime, lead_needed_since: datetime
) -> bool:
    """Mark a live group that has needed a lead since `lead_needed_since` as escalated;
    False when it is not (or no longer) in that state."""
    claimed = await conn.fetchval(
        """UPDATE match_group SET escalated_at = $2
           WHERE id = $1 AND ended_at IS NULL AND lead_melding_id IS NULL
             AND escalated_at IS NULL AND lead_needed_since = $3
           RETURNING true""",
        match_id,
        now,
        lead_needed_since,
    )
    return bool(claimed)


async def set_municipality(conn: Conn, youth_id: int, municipality: str) -> None:
    await conn.execute("UPDATE youth SET municipality = $2 WHERE id = $1", youth_id, municipality)


async def birth_date_of(conn: Conn, youth_id: int) -> date | None:
    birth_date: date | None = await conn.fetchval(
        "SELECT birth_date FROM youth WHERE id = $1", youth_id
    )
    return birth_date


async def youth_municipality(conn: Conn, youth_id: int) -> str:
    return str(await conn.fetchval("SELECT municipality FROM youth WHERE id = $1", youth_id))


async def delete_youths_if_empty(conn: Conn, youth_ids: Sequence[int]) -> None:
    """Purged means gone: a youth without meldingen leaves no row behind."""
    if youth_ids:
        await conn.execute(
            """DELETE FROM youth WHERE id = ANY($1::bigint[])
               AND NOT EXISTS (SELECT 1 FROM melding WHERE youth_id = youth.id)""",
            list(youth_ids),
        )


async def melding_counts(conn: Conn, partner_ids: Sequence[str]) -> dict[str, int]:
    """How many meldingen (active and archived) each of these partners has; partners
    without any are left out."""
    rows = await conn.fetch(
        """SELECT partner_id, count(*) AS n FROM melding
           WHERE partner_id = ANY($1::text[]) GROUP BY partner_id""",
        list(partner_ids),
    )
    return {r["partner_id"]: int(r["n"]) for r in rows}


async def youths_with_active_meldingen_of(conn: Conn, partner_ids: Sequence[str]) -> list[int]:
    """The youths on which these partners have an active melding, in id order."""
    rows = await conn.fetch(
        """SELECT DISTINCT youth_id FROM melding
           WHERE partner_id = ANY($1::text[]) AND state = 'active' ORDER BY youth_id""",
        list(partner_ids),
    )
    return [r["youth_id"] for r in rows]


@dataclass(frozen=True)
class SubjectRecord:
    """Everything stored on one youth, row by row, for an access request."""

    youth: dict[str, Any]
    meldingen: list[dict[str, Any]]
    matches: list[dict[str, Any]]
    log: list[dict[str, Any]]  # the audit log's entries on the youth


async def subject_record(conn: Conn, identity_hash: bytes, youth_ref: str) -> SubjectRecord | None:
    youth = await conn.fetchrow(
        """SELECT id, has_bsn, birth_date, municipality, created_at FROM youth
           WHERE identity_hash = $1""",
        identity_hash,
    )
    if youth is None:
        return None
    meldingen = await conn.fetch(
        """SELECT partner_id, melding_ref, state, reported_at, registered_at, reporter_name,
                  reporter_email, reporter_phone, expires_on, ended_at, end_reason, purge_on,
                  inform_targets, informed, informed_on, deferred_reason, inform_reminded_at
           FROM melding WHERE youth_id = $1 ORDER BY registered_at, id""",
        youth["id"],
    )
    matches = await conn.fetch(
        """SELECT g.id, g.formed_at, g.ended_at, lead.partner_id AS lead_partner
           FROM match_group g LEFT JOIN melding lead ON lead.id = g.lead_melding_id
           WHERE g.youth_id = $1 ORDER BY g.formed_at""",
        youth["id"],
    )
    log = await conn.fetch(
        """SELECT at, action, actor, melding_ref FROM audit_log
           WHERE youth_ref = $1 ORDER BY at, id""",
        youth_ref,
    )
    return SubjectRecord(
        dict(youth),
        [dict(m) for m in meldingen],
        [dict(g) for g in matches],
        [dict(e) for e in log],
    )


# --- What the retention rules find due -------------------------------------------------
# Each returns one page in keyset order: the rows whose key `id` is after `after`, at
# most `limit`, each with the `youth_id` whose lock its action takes. The threshold is
# exact on the column its index serves, so every page is an index range scan.


async def youths_born_by(conn: Conn, born_by: date, after: int, limit: int) -> list[asyncpg.Record]:
    """Youths born on or before `born_by` (who have reached the age limit)."""
    return await conn.fetch(
        """SELECT id, id AS youth_id FROM youth WHERE id > $1 AND birth_date <= $3
           ORDER BY id LIMIT $2""",
        after,
        limit,
        born_by,
    )


async def meldingen_expiring_by(
    conn: Conn, on: date, after: int, limit: int
) -> list[asyncpg.Record]:
    """Active meldingen that expire on or before `on`."""
    return await conn.fetch(
        """SELECT id, youth_id FROM melding WHERE id > $1 AND state = 'active'
           AND expires_on <= $3 ORDER BY id LIMIT $2""",
        after,
        limit,
        on,
    )


async def archives_to_purge_by(
    conn: Conn, on: date, after: int, limit: int
) -> list[asyncpg.Record]:
    """Archived meldingen whose archive term is over on or before `on`."""
    return await conn.fetch(
        """SELECT id, youth_id FROM melding WHERE id > $1 AND state = 'archived'
           AND purge_on <= $3 ORDER BY id LIMIT $2""",
        after,
        limit,
        on,
    )


async def groups_without_lead_since(
    conn: Conn, since: datetime, after: uuid.UUID, limit: int
) -> list[asyncpg.Record]:
    """Live groups not yet escalated that have needed a lead since `since` or longer,
    with `lead_needed_since`."""
    return await conn.fetch(
        """SELECT id, youth_id, lead_needed_since FROM match_group
           WHERE id > $1 AND ended_at IS NULL AND lead_melding_id IS NULL
             AND escalated_at IS NULL AND lead_needed_since <= $3
           ORDER BY id LIMIT $2""",
        after,
        limit,
        since,
    )


async def meldingen_uninformed_since(
    conn: Conn, reported_by: datetime, after: int, limit: int
) -> list[asyncpg.Record]:
    """Active meldingen reported on or before `reported_by` with nothing recorded on
    informing the family and no reminder yet, with `reported_at`."""
    return await conn.fetch(
        """SELECT id, youth_id, reported_at FROM melding WHERE id > $1
           AND state = 'active' AND informed IS NULL AND deferred_reason IS NULL
           AND inform_reminded_at IS NULL AND reported_at <= $3
           ORDER BY id LIMIT $2""",
        after,
        limit,
        reported_by,
    )
