"""The portal's own record of its partners' meldingen: what their professionals
entered, and what the index answered and signalled since (from the mailboxes).

Every query is scoped to one partner, and for a professional to their own meldingen:
a melding of another organisation is simply not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.db.pool import Conn

ACTIVE = ("pending", "active")
ARCHIVED = ("withdrawn", "ended")

# Ends after which the index keeps nothing (contract §3, domain rule 7): the portal
# then forgets the youth's identity too.
PURGED_AT_ONCE = frozenset({"unjustified", "age_limit", "deceased", "erased"})
# The longest the index keeps an ended melding (5 years in the archive), and how long
# a registration the index refused stays for "Opnieuw invullen".
ARCHIVE_YEARS = 5
REFUSED_DAYS = 30


@dataclass(frozen=True)
class Scope:
    """Whose meldingen a user sees: the organisation's, or only their own."""

    partner_id: str
    created_by: uuid.UUID | None  # None: the whole organisation


@dataclass(frozen=True)
class Youth:
    birth_date: date
    municipality: str
    bsn: str | None = None
    surname: str | None = None
    sex: str | None = None


async def record_registration(
    conn: Conn,
    *,
    partner_id: str,
    melding_ref: str,
    created_by: uuid.UUID,
    youth: Youth,
    reporter: dict[str, str],
    reported_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO portal_melding (partner_id, melding_ref, created_by, bsn, surname, sex,
                  birth_date, municipality, reporter, reported_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        partner_id,
        melding_ref,
        created_by,
        youth.bsn,
        youth.surname,
        youth.sex,
        youth.birth_date,
        youth.municipality,
        reporter,
        reported_at,
    )


def _scoped(scope: Scope, first_param: int) -> tuple[str, list[Any]]:
    if scope.created_by is None:
        return f"m.partner_id = ${first_param}", [scope.partner_id]
    return (
        f"m.partner_id = ${first_param} AND m.created_by = ${first_param + 1}",
        [scope.partner_id, scope.created_by],
    )


async def meldingen(conn: Conn, scope: Scope, *, archived: bool) -> list[dict[str, Any]]:
    where, args = _scoped(scope, 2)
    rows = await conn.fetch(
        f"""SELECT m.*, u.name AS creator_name FROM portal_melding m
            LEFT JOIN portal_user u ON u.id = m.created_by
            WHERE {where} AND m.status = ANY($1::text[])
            ORDER BY m.reported_at DESC, m.melding_ref""",  # noqa: S608 - constant SQL parts
        list(ARCHIVED if archived else ACTIVE),
        *args,
    )
    found = [dict(r) for r in rows]
    await _attach_counterparts(conn, scope.partner_id, found)
    return found


async def melding(conn: Conn, scope: Scope, melding_ref: str) -> dict[str, Any] | None:
    where, args = _scoped(scope, 2)
    row = await conn.fetchrow(
        f"""SELECT m.*, u.name AS creator_name FROM portal_melding m
            LEFT JOIN portal_user u ON u.id = m.created_by
            WHERE m.melding_ref = $1 AND {where}""",  # noqa: S608 - constant SQL parts
        melding_ref,
        *args,
    )
    if row is None:
        return None
    found = [dict(row)]
    await _attach_counterparts(conn, scope.partner_id, found)
    return found[0]


async def _attach_counterparts(conn: Conn, partner_id: str, found: list[dict[str, Any]]) -> None:
    refs = [m["melding_ref"] for m in found]
    rows = await conn.fetch(
        """SELECT c.* FROM portal_counterpart c
           JOIN portal_melding m USING (partner_id, melding_ref)
           WHERE c.partner_id = $1 AND c.melding_ref = ANY($2::text[])
             AND (c.family_relation IS NOT NULL OR c.match_id = m.match_id)
           ORDER BY c.registered_at NULLS LAST, c.organisation""",
        partner_id,
        refs,
    )
    by_ref: dict[str, list[dict[str, Any]]] = {ref: [] for ref in refs}
    for r in rows:
        by_ref[r["melding_ref"]].append(dict(r))
    for m in found:
        everyone = by_ref[m["melding_ref"]]
        m["counterparts"] = [c for c in everyone if c["family_relation"] is None]
        m["family"] = [c for c in everyone if c["family_relation"] is not None]


async def answers(conn: Conn, partner_id: str, melding_ref: str) -> list[dict[str, Any]]:
    """The portal's requests on a melding and the index's answers, newest first."""
    rows = await conn.fetch(
        """SELECT p.message_id, p.routing_key, p.created_at, p.receipt_status,
                  p.receipt_errors, p.answered_at, u.name AS actor_name
           FROM portal_message p LEFT JOIN portal_user u ON u.id = p.actor
           WHERE p.partner_id = $1 AND p.melding_ref = $2
           ORDER BY p.created_at DESC""",
        partner_id,
        melding_ref,
    )
    return [dict(r) for r in rows]


async def notices(conn: Conn, partner_id: str, melding_ref: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT type, body, received_at FROM portal_notice
           WHERE partner_id = $1 AND melding_ref = $2 AND type <> 'receipt'
           ORDER BY received_at DESC""",
        partner_id,
        melding_ref,
    )
    return [dict(r) for r in rows]


async def answer(conn: Conn, message_id: uuid.UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT receipt_status, receipt_errors, melding_ref FROM portal_message
           WHERE message_id = $1 AND answered_at IS NOT NULL""",
        message_id,
    )
    return None if row is None else dict(row)


async def change_melding(
    conn: Conn, partner_id: str, melding_ref: str | None, assignments: str, *values: Any
) -> None:
    """Change one melding: `assignments` is a constant SET list whose values are $3,
    $4, ... in the order given."""
    await conn.execute(
        f"UPDATE portal_melding SET {assignments}"  # noqa: S608 - constant SET lists
        " WHERE partner_id = $1 AND melding_ref = $2",
        partner_id,
        melding_ref,
        *values,
    )


async def forget_identity(conn: Conn, partner_id: str, melding_ref: str) -> None:
    """The index purged this melding at once: the portal forgets who the youth is."""
    await change_melding(
        conn,
        partner_id,
        melding_ref,
        "bsn = NULL, surname = NULL, sex = NULL, birth_date = NULL, identity_forgotten = true",
    )


async def forget_expired(conn: Conn, now: datetime) -> int:
    """Delete what the index no longer keeps either: meldingen ended longer ago than
    the archive lasts, and refused registrations after REFUSED_DAYS. Returns how many
    meldingen went."""
    gone = await conn.fetch(
        """DELETE FROM portal_melding
           WHERE (status IN ('withdrawn', 'ended')
                  AND ended_at < $1::timestamptz - make_interval(years => $2))
              OR (status = 'rejected' AND created_at < $1::timestamptz - make_interval(days => $3))
           RETURNING partner_id, melding_ref""",
        now,
        ARCHIVE_YEARS,
        REFUSED_DAYS,
    )
    if gone:
        partners = [r["partner_id"] for r in gone]
        refs = [r["melding_ref"] for r in gone]
        for table in ("portal_message", "portal_notice"):
            await conn.execute(
                f"""DELETE FROM {table} t USING unnest($1::text[], $2::text[]) AS g(p, r)
                    WHERE t.partner_id = g.p AND t.melding_ref = g.r""",  # noqa: S608 - constant SQL parts
                partners,
                refs,
            )
    return len(gone)
