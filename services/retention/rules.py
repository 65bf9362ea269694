"""The time-driven rules, one function each: find what is due, act on one youth.

Every action runs under the youth's row lock (taken by the sweep) and re-checks its
condition there, so acting twice, or racing the matcher, changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from shared.announce import announce, lookup_messages
from shared.dates import amsterdam_date
from shared.db.journal import Journal
from shared.db.outbox import UnitOfWork
from shared.db.pool import Conn
from shared.index import family_store
from shared.index import repository as repo
from shared.index.deadlines import (
    age_limit_date,
    days_after,
    is_due,
    latest_birth_date_at_age_limit,
    latest_start_due,
)
from shared.index.decisions import LeadChanged
from shared.index.lifecycle import (
    end_meldingen,
    purge_youth,
    tidy_after_purge,
)
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfig


@dataclass(frozen=True)
class Target:
    """One due thing: the youth to lock, and the row that is due."""

    youth_id: int
    row: asyncpg.Record
    pseudonyms: Pseudonymizer


# An action returns how many due things it acted on (True for one, False for none);
# it notes its audit entries in the journal, which the sweep writes before commit.
Action = Callable[[UnitOfWork, Journal, RegionConfig, Target, str, datetime], Awaitable[int]]

# A page of candidates in keyset order: (conn, threshold, after key, page size); see
# "What the retention rules find due" in shared.index.repository.
Candidates = Callable[[Conn, Any, Any, int], Awaitable[list[asyncpg.Record]]]


@dataclass(frozen=True)
class Rule:
    name: str
    meaning: str  # what acting on one row does, for the operator
    # The threshold is exact on Amsterdam calendar dates (see shared.index.deadlines);
    # `due` checks again in Python, and the action re-checks under the youth's lock.
    candidates: Candidates
    first_key: Any
    threshold: Callable[[datetime, RegionConfig], Any]
    action: Action
    due: Callable[[asyncpg.Record, datetime, RegionConfig], bool] = lambda r, n, c: True


def _today(now: datetime, _: RegionConfig) -> date:
    return amsterdam_date(now)


# --- 23rd birthday: everything on the youth ends and is purged ------------------------


async def _purge_youth(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> bool:
    birth_date = await repo.birth_date_of(uow.conn, target.youth_id)
    if birth_date is None or not is_due(age_limit_date(birth_date), now):
        return False
    told = await purge_youth(
        uow.conn,
        journal,
        target.youth_id,
        youth_ref=youth_ref,
        reason="age_limit",
        actor="system",
        now=now,
    )
    uow.emit(*announce(region, told))
    return True


AGE_LIMIT_RULE = Rule(
    name="age_limit",
    meaning="youths who turned 23: everything on them ends and is purged",
    # Exact on the birth date (and so served by its index): 29 February counts as
    # 28 February in a year without it.
    candidates=repo.youths_born_by,
    first_key=0,
    threshold=lambda now, c: latest_birth_date_at_age_limit(amsterdam_date(now)),
    action=_purge_youth,
)


# --- 2-year expiry: active meldingen end, into the archive ----------------------------


async def _expire(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> int:
    """End every active melding of the youth that is due, together: a match whose
    members expire on the same day (or are caught up by a late sweep) ends once, and
    none of them is told `match.ended` about a match it leaves itself."""
    due = await repo.expiring_meldingen(uow.conn, target.youth_id, amsterdam_date(now))
    if not due:
        return 0
    told = await end_meldingen(
        uow.conn,
        journal,
        region,
        [melding for melding, _ in due],
        youth_id=target.youth_id,
        youth_ref=youth_ref,
        reason="expired",
        actor="system",
        now=now,
        # The archive term runs from the expiry date, even if this sweep is late.
        archive_from={melding.id: expires_on for melding, expires_on in due},
    )
    uow.emit(*announce(region, told))
    return len(due)


EXPIRY_RULE = Rule(
    name="expired",
    meaning="active meldingen two years old: they end and go to the archive",
    candidates=repo.meldingen_expiring_by,
    first_key=0,
    threshold=_today,
    action=_expire,
)


# --- Archive term over: purge -----------------------------------------------------------


async def _purge_archived(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> bool:
    ref = await repo.purge_archived(uow.conn, target.row["id"], amsterdam_date(now))
    if ref is None:
        return False
    journal.audit(
        "purged",
        "system",
        melding_ref=ref,
        youth_ref=youth_ref,
        detail={"reason": "archive_term"},
        at=now,
    )
    await tidy_after_purge(uow.conn, target.youth_id)
    return True


ARCHIVE_PURGE_RULE = Rule(
    name="archive_purged",
    meaning="archived meldingen whose archive term is over: purged",
    candidates=repo.archives_to_purge_by,
    first_key=0,
    threshold=_today,
    action=_purge_archived,
)


# --- Lead escalation: once per period without a lead ----------------------------------


async def _escalate(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> bool:
    match_id: uuid.UUID = target.row["id"]
    if not await repo.claim_escalation(uow.conn, match_id, now, target.row["lead_needed_since"]):
        return False
    members = await repo.active_members(uow.conn, match_id)
    municipality = await repo.youth_municipality(uow.conn, target.youth_id)
    uow.emit(
        *announce(region, [LeadChanged(match_id, members, None, municipality, escalated=True)])
    )
    journal.audit("lead_escalated", "system", youth_ref=youth_ref, match_id=match_id, at=now)
    return True


ESCALATION_RULE = Rule(
    name="lead_escalated",
    meaning="matches without a lead past the deadline: escalated",
    candidates=repo.groups_without_lead_since,
    first_key=uuid.UUID(int=0),
    threshold=lambda now, c: latest_start_due(now, c.region.regie_deadline_days),
    action=_escalate,
    due=lambda r, now, c: is_due(
        days_after(r["lead_needed_since"], c.region.regie_deadline_days), now
    ),
)


# --- Informing the family: one reminder when nothing was recorded ---------------------


async def _remind(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> bool:
    reminder = await repo.claim_reminder(uow.conn, target.row["id"], now)
    if reminder is None:
        return False
    uow.emit(*announce(region, [reminder]))
    journal.audit(
        "inform_reminded",
        "system",
        melding_ref=reminder.melding_ref,
        youth_ref=youth_ref,
        at=now,
    )
    return True


INFORM_REMINDER_RULE = Rule(
    name="inform_reminded",
    meaning="meldingen with no informing recorded past the deadline: reminded",
    candidates=repo.meldingen_uninformed_since,
    first_key=0,
    threshold=lambda now, c: latest_start_due(now, c.region.inform_deadline_days),
    action=_remind,
    due=lambda r, now, c: is_due(days_after(r["reported_at"], c.region.inform_deadline_days), now),
)

# --- Family facts not answered: ask the registers again, at most once a day -----------

LOOKUP_INTERVAL = timedelta(days=1)


async def _ask_again(
    uow: UnitOfWork,
    journal: Journal,
    region: RegionConfig,
    target: Target,
    youth_ref: str,
    now: datetime,
) -> bool:
    conn = uow.conn
    pending = await family_store.pending_lookup(conn, target.youth_id)
    if pending is None or pending.sent_at > now - LOOKUP_INTERVAL:
        return False
    active = any(m.active for m in await repo.meldingen_of_youth(conn, target.youth_id))
    if not active or not region.region.family_matching or not region.population_registers:
        # Nothing left to match (or nobody to ask): the sealed BSN goes.
        await family_store.drop_lookups(conn, [target.youth_id])
        journal.audit("family_lookup_dropped", "system", youth_ref=youth_ref, at=now)
        return True
    bsn = target.pseudonyms.open_bsn(str(pending.lookup_id), pending.sealed_bsn)
    await family_store.lookup_sent_again(conn, target.youth_id, now)
    uow.emit(*lookup_messages(region, pending.lookup_id, bsn, now))
    journal.audit("family_lookup_resent", "system", youth_ref=youth_ref, at=now)
    return True


LOOKUP_RULE = Rule(
    name="family_lookup_resent",
    meaning=(
        "family lookups unanswered for a day: asked again, or dropped when the youth"
        " has no active melding"
    ),
    candidates=family_store.lookups_sent_by,
    first_key=0,
    threshold=lambda now, c: now - LOOKUP_INTERVAL,
    action=_ask_again,
)

# The 23rd birthday first: what it purges needs no expiry or reminder after.
RULES = (
    AGE_LIMIT_RULE,
    EXPIRY_RULE,
    ARCHIVE_PURGE_RULE,
    ESCALATION_RULE,
    INFORM_REMINDER_RULE,
    LOOKUP_RULE,
)
