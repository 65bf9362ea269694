"""The portal's own record of its partners' meldingen: what their professionals
entered, and what the index answered and signalled since (from the mailboxes).

Every query is scoped to one partner, and for a professional to their own meldingen:
a melding of another organisation is simply not found.
"""

from __future__ import annotations

import json
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


# --- what the mailboxes bring ------------------------------------------------------


async def take_in(
    conn: Conn,
    partner_id: str,
    message_id: str,
    correlation_id: str | None,
    body: dict[str, Any],
) -> bool:
    """Apply one message from a mailbox, once; False when it was seen before."""
    kind = str(body.get("type", ""))
    ref = body.get("melding_ref") if isinstance(body.get("melding_ref"), str) else None
    fresh = await conn.fetchval(
        """INSERT INTO portal_notice (partner_id, message_id, melding_ref, type, body)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        partner_id,
        message_id,
        ref,
        kind,
        body,
    )
    if not fresh:
        return False
    apply = _APPLY.get(kind)
    if apply is not None:
        await apply(conn, partner_id, ref, correlation_id, body)
    return True


async def keep(conn: Conn, partner_id: str, message_id: str, body: dict[str, Any]) -> None:
    """Record a message as seen without applying it (one the read model cannot apply)."""
    ref = body.get("melding_ref")
    await conn.execute(
        """INSERT INTO portal_notice (partner_id, message_id, melding_ref, type, body)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        partner_id,
        message_id,
        ref if isinstance(ref, str) else None,
        str(body.get("type", "")),
        body,
    )


async def _receipt(
    conn: Conn, partner_id: str, ref: str | None, correlation_id: str | None, body: dict[str, Any]
) -> None:
    try:
        message_id = uuid.UUID(str(body.get("in_reply_to") or correlation_id))
    except ValueError:
        return  # not an answer to anything the portal sent
    status = str(body.get("status"))
    sent = await conn.fetchrow(
        """UPDATE portal_message SET receipt_status = $2, receipt_errors = $3,
                  answered_at = now()
           WHERE message_id = $1 AND (answered_at IS NULL OR receipt_status = 'duplicate')
             AND $2 <> 'duplicate'
           RETURNING partner_id, routing_key, melding_ref, body""",
        message_id,
        status,
        body.get("errors") or [],
    )
    if sent is None:
        return
    request = json.loads(bytes(sent["body"]))
    key = (sent["partner_id"], sent["melding_ref"])
    if sent["routing_key"] == "melding.register":
        await conn.execute(
            """UPDATE portal_melding SET status = $3, inform = $4
               WHERE partner_id = $1 AND melding_ref = $2 AND status = 'pending'""",
            *key,
            "active" if status == "accepted" else "rejected",
            list(body.get("inform") or []),
        )
        # Answered, so published: the copy of the youth's identity in the sent message
        # is needed no more (portal_melding keeps the one the pages show).
        await conn.execute(
            """UPDATE portal_message SET body = $2,
                      published_at = coalesce(published_at, now())
               WHERE message_id = $1""",
            message_id,
            json.dumps({k: v for k, v in request.items() if k != "youth"}).encode(),
        )
    elif status != "accepted":
        return
    elif sent["routing_key"] == "melding.withdraw":
        await conn.execute(
            """UPDATE portal_melding SET status = 'withdrawn', ended_reason = $3,
                      ended_at = now(), lead = NULL
               WHERE partner_id = $1 AND melding_ref = $2""",
            *key,
            request.get("reason"),
        )
        if request.get("reason") in PURGED_AT_ONCE:
            await forget_identity(conn, *key)
    elif sent["routing_key"] == "melding.informed":
        informed_on = request.get("informed_on")
        await conn.execute(
            """UPDATE portal_melding SET informed = $3, informed_on = $4, deferred_reason = $5
               WHERE partner_id = $1 AND melding_ref = $2""",
            *key,
            request.get("informed"),
            date.fromisoformat(informed_on) if informed_on else None,
            request.get("deferred_reason"),
        )


async def _counterpart(
    conn: Conn,
    partner_id: str,
    ref: str,
    match_id: str,
    counterpart: dict[str, Any],
    relation: str | None,
) -> None:
    registered = counterpart.get("registered_at")
    await conn.execute(
        """INSERT INTO portal_counterpart (partner_id, melding_ref, match_id, counterpart,
                  organisation, sector, reporter, registered_at, archived, family_relation)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (partner_id, melding_ref, match_id, counterpart) DO UPDATE
           SET reporter = excluded.reporter, archived = excluded.archived""",
        partner_id,
        ref,
        uuid.UUID(match_id),
        str(counterpart.get("partner")),
        str(counterpart.get("organisation", "")),
        str(counterpart.get("sector", "")),
        counterpart.get("reporter") or {},
        datetime.fromisoformat(registered) if registered else None,
        bool(counterpart.get("archived", False)),
        relation,
    )


async def _known(conn: Conn, partner_id: str, ref: str | None) -> bool:
    return ref is not None and bool(
        await conn.fetchval(
            "SELECT true FROM portal_melding WHERE partner_id = $1 AND melding_ref = $2",
            partner_id,
            ref,
        )
    )


async def _match_notice(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    if not await _known(conn, partner_id, ref):
        return
    assert ref is not None
    await conn.execute(
        """UPDATE portal_melding SET match_id = $3, lead = $4, match_ended_at = NULL
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
        uuid.UUID(str(body["match_id"])),
        body.get("lead"),
    )
    for counterpart in body.get("counterparts") or []:
        await _counterpart(conn, partner_id, ref, str(body["match_id"]), counterpart, None)


async def _regie_notice(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE portal_melding SET lead = $3, lead_escalated = $4,
                  match_id = coalesce($5, match_id)
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
        body.get("lead"),
        bool(body.get("escalated", False)),
        uuid.UUID(str(body["match_id"])) if body.get("match_id") else None,
    )


async def _match_ended(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE portal_melding SET match_ended_at = now(), lead = NULL
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
    )


async def _melding_ended(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE portal_melding SET status = 'ended', ended_reason = $3, ended_at = now(),
                  lead = NULL
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
        body.get("reason"),
    )
    if body.get("reason") in PURGED_AT_ONCE and ref is not None:
        await forget_identity(conn, partner_id, ref)


async def forget_identity(conn: Conn, partner_id: str, melding_ref: str) -> None:
    """The index purged this melding at once: the portal forgets who the youth is."""
    await conn.execute(
        """UPDATE portal_melding SET bsn = NULL, surname = NULL, sex = NULL,
                  birth_date = NULL, identity_forgotten = true
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        melding_ref,
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


async def _reminder(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE portal_melding SET reminded_at = now()
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
    )


async def _moved(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await conn.execute(
        """UPDATE portal_melding SET municipality = $3
           WHERE partner_id = $1 AND melding_ref = $2""",
        partner_id,
        ref,
        str(body.get("municipality")),
    )


async def _family_notice(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    if not await _known(conn, partner_id, ref) or not isinstance(body.get("counterpart"), dict):
        return
    assert ref is not None
    await _counterpart(
        conn,
        partner_id,
        ref,
        str(body["family_match_id"]),
        body["counterpart"],
        str(body.get("relation", "parent")),
    )


_APPLY = {
    "receipt": _receipt,
    "match.notice": _match_notice,
    "regie.notice": _regie_notice,
    "match.ended": _match_ended,
    "melding.ended": _melding_ended,
    "inform.reminder": _reminder,
    "youth.moved": _moved,
    "family.notice": _family_notice,
}
