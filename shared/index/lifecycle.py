"""How a melding ends, and what follows for its match group and lead.

Shared by the matcher (withdraw, death), the retention sweep (expiry, 23rd birthday,
archive purge) and the operator CLI (erasure, a partner's retirement). The caller
holds the youth's row lock, owns the transaction and its journal, and announces the
decisions these functions return (`shared.announce`).

A group that keeps fewer than two active meldingen ends, and the owners of those
that remain are told (`MatchOver`); a group that lives on but lost its lead's melding
gets a new (or no) lead (`LeadChanged`).

Purged means gone: a purged melding leaves no row behind (no soft delete), and a youth
with nothing stored any more leaves no youth, match group or membership row either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import cast

from shared.contract.outbound import EndReason
from shared.dates import amsterdam_date
from shared.db.journal import Journal
from shared.db.pool import Conn
from shared.index import repository as repo
from shared.index.deadlines import archive_purge_date
from shared.index.decisions import Decision, Ended, LeadChanged, MatchOver
from shared.index.domain import GroupEnds, MemberSector, StoredMelding, decide_after_leaving
from shared.index.participants import participant
from shared.region.model import RegionConfig

# Ended by these reasons a melding is kept in the archive for 5 years; by any other
# reason it is purged at once (domain rule 7).
ARCHIVING_REASONS = frozenset({"risk_ended", "expired"})
# The owner is told with melding.ended unless it ended the melding itself.
NOTIFIED_REASONS = frozenset({"expired", "age_limit", "deceased", "erased"})


async def end_melding(
    conn: Conn,
    journal: Journal,
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
) -> list[Decision]:
    """End one melding (active or archived). Returns who is to be told what.

    An archived melding's 5-year term runs from ``archive_from`` (the expiry date, for
    an expiry handled by a late sweep) or else from the day it ends.
    """
    return await end_meldingen(
        conn,
        journal,
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
    journal: Journal,
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
) -> list[Decision]:
    """End meldingen of one youth for one reason (see `end_melding`; `archive_from`
    by melding id), then settle their match group once: the others hear one outcome,
    not one per melding, and none of those ending is told the group ended."""
    told: list[Decision] = []
    left = [m.id for m in meldingen if m.active]
    group = (await repo.open_groups(conn, [youth_id])).get(youth_id) if left else None
    purged = False
    for melding in meldingen:
        if reason in ARCHIVING_REASONS and melding.active:
            await repo.archive_melding(
                conn,
                melding.id,
                ended_at=now,
                reason=reason,
                purge_on=archive_purge_date(
                    (archive_from or {}).get(melding.id) or amsterdam_date(now)
                ),
            )
            action = "archived"
        else:
            await repo.delete_melding(conn, melding.id)
            action = "purged"
            purged = True
        journal.audit(
            action,
            actor,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            detail={"partner": melding.partner_id, "reason": reason},
            at=now,
            portal_user=portal_user,
        )
        if melding.active and reason in NOTIFIED_REASONS:
            told.append(Ended(melding, cast(EndReason, reason)))
    if group is not None:
        told.extend(await after_members_left(conn, region, group, left, youth_id=youth_id, now=now))
    if purged:
        await tidy_after_purge(conn, youth_id)
    return told


async def purge_youth(
    conn: Conn,
    journal: Journal,
    youth_id: int,
    *,
    youth_ref: str,
    reason: EndReason,
    actor: str,
    now: datetime,
) -> list[Decision]:
    """Purge everything stored on a youth, active and archived (23rd birthday, death,
    erasure). Returns who is to be told: the owner of every active melding, that it
    ended.

    Every melding ends at once, so no lead is cleared or reassigned on the way, and
    no melding remains to be told `match.ended`: the partners hear only that their own
    melding ended.
    """
    told: list[Decision] = []
    for melding in await repo.meldingen_of_youth(conn, youth_id):
        journal.audit(
            "purged",
            actor,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            detail={"partner": melding.partner_id, "reason": reason},
            at=now,
        )
        if melding.active and reason in NOTIFIED_REASONS:
            told.append(Ended(melding, reason))
    await repo.delete_youth(conn, youth_id)
    return told


async def tidy_after_purge(conn: Conn, youth_id: int) -> None:
    """After a melding was purged: drop ended match groups that no longer have any
    member, and the youth itself when nothing is stored on it any more."""
    await repo.delete_empty_ended_groups(conn, youth_id)
    await repo.delete_youths_if_empty(conn, [youth_id])


async def after_members_left(
    conn: Conn,
    region: RegionConfig,
    group: repo.Group,
    left: Collection[int],
    *,
    youth_id: int,
    now: datetime,
) -> list[Decision]:
    """The consequences for a group of its active meldingen ``left`` having ended."""
    remaining = await repo.active_members(conn, group.id)
    priority = region.region.regie_priority
    decision = decide_after_leaving(
        [MemberSector(m.id, participant(region, m).sector, m.registered_at) for m in remaining],
        left=left,
        lead_melding_id=group.lead_melding_id,
        priority=[s.value for s in priority] if priority else None,
    )
    if isinstance(decision, GroupEnds):
        await repo.end_group(conn, group.id, now)
        return [MatchOver(group.id, [m for m in remaining if m.id in decision.remaining])]
    if decision is None:
        return []
    await repo.set_lead(conn, group.id, None, now)
    if decision.new_lead is not None:
        await repo.set_lead(conn, group.id, decision.new_lead, now)
    municipality = await repo.youth_municipality(conn, youth_id)
    return [LeadChanged(group.id, remaining, decision.new_lead, municipality)]
