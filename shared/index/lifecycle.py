"""How a melding ends, and what follows for its match group and lead.

Shared by the matcher (withdraw, death), the retention sweep (expiry, 23rd birthday,
archive purge) and the operator CLI (erasure, a partner's retirement). The caller
holds the youth's row lock.

A group that keeps fewer than two active meldingen ends, and the owners of those
that remain get `match.ended`; a group that lives on but lost its lead's melding
gets a new (or no) lead, announced with `regie.notice`.

Purged means gone: a purged melding leaves no row behind (no soft delete), and a youth
with nothing stored any more leaves no youth, match group or membership row either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import cast

from shared.contract.outbound import EndReason
from shared.dates import amsterdam_date
from shared.db.audit import audit
from shared.db.pool import Conn
from shared.index import repository as repo
from shared.index.deadlines import archive_purge_date
from shared.index.domain import GroupEnds, MemberSector, StoredMelding, decide_after_leaving
from shared.index.notices import (
    ended_event,
    match_ended_event,
    notify_message,
    participant,
    regie_event,
)
from shared.outgoing import OutboundMessage
from shared.region.model import RegionConfig

# Ended by these reasons a melding is kept in the archive for 5 years; by any other
# reason it is purged at once (domain rule 7).
ARCHIVING_REASONS = frozenset({"risk_ended", "expired"})
# The owner is told with melding.ended unless it ended the melding itself.
NOTIFIED_REASONS = frozenset({"expired", "age_limit", "deceased", "erased"})


async def end_melding(
    conn: Conn,
    region: RegionConfig,
    melding: StoredMelding,
    *,
    youth_id: int,
    youth_ref: str,
    reason: str,
    actor: str,
    now: datetime,
    archive_from: date | None = None,
    portal_user: str | None = None,
) -> list[OutboundMessage]:
    """End one melding (active or archived). Returns the messages to emit.

    An archived melding's 5-year term runs from ``archive_from`` (the expiry date, for
    an expiry handled by a late sweep) or else from the day it ends.
    """
    return await end_meldingen(
        conn,
        region,
        [melding],
        youth_id=youth_id,
        youth_ref=youth_ref,
        reason=reason,
        actor=actor,
        now=now,
        archive_from={melding.id: archive_from} if archive_from else None,
        portal_user=portal_user,
    )


async def end_meldingen(
    conn: Conn,
    region: RegionConfig,
    meldingen: Sequence[StoredMelding],
    *,
    youth_id: int,
    youth_ref: str,
    reason: str,
    actor: str,
    now: datetime,
    archive_from: Mapping[int, date] | None = None,
    portal_user: str | None = None,
) -> list[OutboundMessage]:
    """End meldingen of one youth for one reason (see `end_melding`; `archive_from`
    by melding id), then settle their match group once: the others hear one outcome,
    not one per melding, and none of those ending is told the group ended."""
    out: list[OutboundMessage] = []
    left = [m.id for m in meldingen if m.active]
    group = (await repo.open_groups(conn, [youth_id])).get(youth_id) if left else None
    purged = False
    for melding in meldingen:
        if reason in ARCHIVING_REASONS and melding.active:
            await conn.execute(
                """UPDATE melding SET state = 'archived', ended_at = $2, end_reason = $3,
                       purge_on = $4, archive_signalled = false,
                       informed = NULL, informed_on = NULL, deferred_reason = NULL
                   WHERE id = $1""",
                melding.id,
                now,
                reason,
                archive_purge_date((archive_from or {}).get(melding.id) or amsterdam_date(now)),
            )
            action = "archived"
        else:
            await conn.execute("DELETE FROM melding WHERE id = $1", melding.id)
            action = "purged"
            purged = True
        await audit(
            conn,
            action,
            actor,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            detail={"partner": melding.partner_id, "reason": reason},
            at=now,
            portal_user=portal_user,
        )
        if melding.active and reason in NOTIFIED_REASONS:
            out.append(notify_message(ended_event(melding, cast(EndReason, reason))))
    if group is not None:
        out.extend(await after_members_left(conn, region, group, left, youth_id=youth_id, now=now))
    if purged:
        await tidy_after_purge(conn, youth_id)
    return out


async def purge_youth(
    conn: Conn,
    youth_id: int,
    *,
    youth_ref: str,
    reason: EndReason,
    actor: str,
    now: datetime,
) -> list[OutboundMessage]:
    """Purge everything stored on a youth, active and archived (23rd birthday, death,
    erasure). Returns the messages to emit: `melding.ended` to the owner of every
    active melding.

    Every melding ends at once, so no lead is cleared or reassigned on the way, and
    no melding remains to be told `match.ended`: the partners hear only that their own
    melding ended.
    """
    out: list[OutboundMessage] = []
    for melding in await repo.meldingen_of_youth(conn, youth_id):
        await audit(
            conn,
            "purged",
            actor,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            detail={"partner": melding.partner_id, "reason": reason},
            at=now,
        )
        if melding.active and reason in NOTIFIED_REASONS:
            out.append(notify_message(ended_event(melding, reason)))
    # Explicit order: groups (and with them their memberships), meldingen, the youth.
    await conn.execute("DELETE FROM match_group WHERE youth_id = $1", youth_id)
    await conn.execute("DELETE FROM melding WHERE youth_id = $1", youth_id)
    await conn.execute("DELETE FROM youth WHERE id = $1", youth_id)
    return out


async def tidy_after_purge(conn: Conn, youth_id: int) -> None:
    """After a melding was purged: drop ended match groups that no longer have any
    member, and the youth itself when nothing is stored on it any more."""
    await conn.execute(
        """DELETE FROM match_group g WHERE g.youth_id = $1 AND g.ended_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM match_member mm WHERE mm.match_id = g.id)""",
        youth_id,
    )
    await repo.delete_youths_if_empty(conn, [youth_id])


async def after_members_left(
    conn: Conn,
    region: RegionConfig,
    group: repo.Group,
    left: Collection[int],
    *,
    youth_id: int,
    now: datetime,
) -> list[OutboundMessage]:
    """The consequences for a group of its active meldingen ``left`` having ended."""
    remaining = [participant(region, m) for m in await repo.active_members(conn, group.id)]
    priority = region.region.regie_priority
    decision = decide_after_leaving(
        [MemberSector(p.melding.id, p.sector, p.melding.registered_at) for p in remaining],
        left=left,
        lead_melding_id=group.lead_melding_id,
        priority=[s.value for s in priority] if priority else None,
    )
    if isinstance(decision, GroupEnds):
        await repo.end_group(conn, group.id, now)
        told = [p for p in remaining if p.melding.id in decision.remaining]
        event = match_ended_event(match_id=group.id, remaining=told)
        return [notify_message(event)] if event.notices else []
    if decision is None:
        return []
    await repo.set_lead(conn, group.id, None, now)
    if decision.new_lead is not None:
        await repo.set_lead(conn, group.id, decision.new_lead, now)
    return [
        await lead_changed_message(
            conn,
            region,
            group.id,
            [p.melding for p in remaining],
            decision.new_lead,
            youth_id=youth_id,
            escalated=False,
        )
    ]


async def lead_changed_message(
    conn: Conn,
    region: RegionConfig,
    match_id: object,
    members: list[StoredMelding],
    lead_melding_id: int | None,
    *,
    youth_id: int,
    escalated: bool,
    municipality_code: str | None = None,
    assigned: bool = False,
) -> OutboundMessage:
    """The event telling a group's active members (and the coordinator) who leads.
    `municipality_code` saves a query when the caller knows where the youth lives; a
    lead the coordinator `assigned` also hears it by e-mail."""
    if municipality_code is None:
        municipality_code = await repo.youth_municipality(conn, youth_id)
    municipality = region.municipalities_by_code.get(municipality_code)
    people = [participant(region, m) for m in members]
    lead = next((p for p in people if p.melding.id == lead_melding_id), None)
    template = "regie_escalation" if escalated else ("lead_coordinator" if lead else None)
    event = regie_event(
        match_id=match_id,  # type: ignore[arg-type]
        members=people,
        lead=lead,
        escalated=escalated,
        municipality=municipality,  # type: ignore[arg-type]
        coordinator_template=template if municipality else None,
        assigned=assigned and municipality is not None,
    )
    return notify_message(event)
