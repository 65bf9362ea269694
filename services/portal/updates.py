"""What each message from a portal mailbox changes in the portal's read model: the
receipts of the portal's own requests, match and lead notices, reminders, moves and
ends. Applied once per message_id (the mailbox reader's inbox is `portal_notice`)."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any

from services.portal import gateway
from services.portal.readmodel import PURGED_AT_ONCE, change_melding, forget_identity
from shared.db.pool import Conn


async def take_in(
    conn: Conn,
    partner_id: str,
    message_id: str,
    correlation_id: str | None,
    body: dict[str, Any],
) -> bool:
    """Apply one message from a mailbox, once; False when it was seen before."""
    if not await _note(conn, partner_id, message_id, body):
        return False
    apply = _APPLY.get(str(body.get("type", "")))
    if apply is not None:
        await apply(conn, partner_id, _melding_ref(body), correlation_id, body)
    return True


async def keep(conn: Conn, partner_id: str, message_id: str, body: dict[str, Any]) -> None:
    """Record a message as seen without applying it (one the read model cannot apply)."""
    await _note(conn, partner_id, message_id, body)


def _melding_ref(body: dict[str, Any]) -> str | None:
    ref = body.get("melding_ref")
    return ref if isinstance(ref, str) else None


async def _note(conn: Conn, partner_id: str, message_id: str, body: dict[str, Any]) -> bool:
    """Record a message as seen; False when it was seen before."""
    fresh = await conn.fetchval(
        """INSERT INTO portal_notice (partner_id, message_id, melding_ref, type, body)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        partner_id,
        message_id,
        _melding_ref(body),
        str(body.get("type", "")),
        body,
    )
    return bool(fresh)


async def _end_melding(
    conn: Conn, partner_id: str, ref: str | None, status: str, reason: Any
) -> None:
    """The melding ended (withdrawn or ended by the index); when the index keeps
    nothing of it, the portal forgets the youth's identity too."""
    await change_melding(
        conn,
        partner_id,
        ref,
        "status = $3, ended_reason = $4, ended_at = now(), lead = NULL",
        status,
        reason,
    )
    if reason in PURGED_AT_ONCE and ref is not None:
        await forget_identity(conn, partner_id, ref)


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
        # is needed no more (portal_melding keeps the one the pages show), and an
        # outbox row still waiting must not send it again.
        await conn.execute(
            "UPDATE portal_message SET body = $2 WHERE message_id = $1",
            message_id,
            json.dumps({k: v for k, v in request.items() if k != "youth"}).encode(),
        )
        await gateway.forget_answered(conn, message_id)
    elif status != "accepted":
        return
    elif sent["routing_key"] == "melding.withdraw":
        await _end_melding(conn, *key, "withdrawn", request.get("reason"))
    elif sent["routing_key"] == "melding.informed":
        informed_on = request.get("informed_on")
        await change_melding(
            conn,
            *key,
            "informed = $3, informed_on = $4, deferred_reason = $5",
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
    await change_melding(
        conn,
        partner_id,
        ref,
        "match_id = $3, lead = $4, match_ended_at = NULL",
        uuid.UUID(str(body["match_id"])),
        body.get("lead"),
    )
    for counterpart in body.get("counterparts") or []:
        await _counterpart(conn, partner_id, ref, str(body["match_id"]), counterpart, None)


async def _regie_notice(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await change_melding(
        conn,
        partner_id,
        ref,
        "lead = $3, lead_escalated = $4, match_id = coalesce($5, match_id)",
        body.get("lead"),
        bool(body.get("escalated", False)),
        uuid.UUID(str(body["match_id"])) if body.get("match_id") else None,
    )


async def _match_ended(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await change_melding(conn, partner_id, ref, "match_ended_at = now(), lead = NULL")


async def _melding_ended(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await _end_melding(conn, partner_id, ref, "ended", body.get("reason"))


async def _reminder(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await change_melding(conn, partner_id, ref, "reminded_at = now()")


async def _moved(
    conn: Conn, partner_id: str, ref: str | None, _: str | None, body: dict[str, Any]
) -> None:
    await change_melding(conn, partner_id, ref, "municipality = $3", str(body.get("municipality")))


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
