"""One sweep of every time-driven rule, as of a given moment.

Each rule walks its candidates in bounded batches (keyset pagination), and handles
each youth in its own short transaction under the youth's row lock, re-checking the
condition there. So a sweep is idempotent, memory does not grow with the data, and
several retention replicas (or a sweep racing the matcher) never act twice: a youth
locked elsewhere is skipped and picked up by the next sweep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from shared.contract.outbound import InformReminder
from shared.dates import amsterdam_date
from shared.db.audit import audit
from shared.db.inbox import DEDUP_WINDOW_DAYS
from shared.db.outbox import Outbox
from shared.envelopes import EmailJob, NotifyEvent, PartnerNotice, derived_id
from shared.index import repository as repo
from shared.index.deadlines import AGE_LIMIT, days_after, is_due
from shared.index.lifecycle import end_melding, lead_changed_message
from shared.index.notices import notify_message
from shared.logs import get_logger
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfig

log = get_logger(__name__)

BATCH = 500
AUDIT_RETENTION_DAYS = 7 * 366  # outlives the longest a melding can exist (2 + 5 years)
SENT_EMAIL_RETENTION_DAYS = DEDUP_WINDOW_DAYS


@dataclass
class SweepReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, rule: str, n: int = 1) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + n


class Sweep:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        outbox: Outbox,
        region: RegionConfig,
        pseudonyms: Pseudonymizer,
        *,
        batch: int = BATCH,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._region = region
        self._pseudonyms = pseudonyms
        self._batch = batch

    async def run(self, now: datetime) -> SweepReport:
        report = SweepReport()
        await self._age_limit(now, report)
        await self._expiry(now, report)
        await self._archive_purge(now, report)
        await self._escalation(now, report)
        await self._inform_reminders(now, report)
        await self._housekeeping(now, report)
        log.info("sweep_done", now=now.isoformat(), **report.counts)
        return report

    async def _batches(self, sql: str, *args: Any, start: Any = 0) -> Any:
        """Yield batches of rows ordered by `id`; `sql` takes $1 = the last id seen,
        $2 = the batch size, then `args`."""
        last = start
        while True:
            rows = await self._pool.fetch(sql, last, self._batch, *args)
            if not rows:
                return
            yield rows
            last = rows[-1]["id"]

    async def _for_youth(self, youth_id: int, work: Any) -> bool:
        async with self._outbox.unit_of_work() as uow:
            youth = await uow.conn.fetchrow(
                "SELECT id, identity_hash FROM youth WHERE id = $1 FOR UPDATE SKIP LOCKED",
                youth_id,
            )
            if youth is None:
                return False
            youth_ref = self._pseudonyms.audit_ref(youth["identity_hash"])
            return bool(await work(uow, youth_ref))

    # Rule 6/7: the 23rd birthday ends and purges everything on the youth.
    async def _age_limit(self, now: datetime, report: SweepReport) -> None:
        async for rows in self._batches(
            """SELECT id FROM youth WHERE id > $1
               AND (birth_date + make_interval(years => $3))::date <= $4::date
               ORDER BY id LIMIT $2""",
            AGE_LIMIT,
            _amsterdam_today(now),
        ):
            for row in rows:

                async def purge(uow: Any, youth_ref: str, youth_id: int = row["id"]) -> bool:
                    meldingen = await repo.meldingen_of_youth(uow.conn, youth_id)
                    for melding in meldingen:
                        uow.emit(
                            *await end_melding(
                                uow.conn,
                                self._region,
                                melding,
                                youth_id=youth_id,
                                youth_ref=youth_ref,
                                reason="age_limit",
                                actor="system",
                                now=now,
                            )
                        )
                    await repo.delete_youth_if_empty(uow.conn, youth_id)
                    return True

                if await self._for_youth(row["id"], purge):
                    report.add("age_limit")

    # Rule 6: two years after the melding was made it ends, into the archive.
    async def _expiry(self, now: datetime, report: SweepReport) -> None:
        async for rows in self._batches(
            """SELECT id, youth_id FROM melding WHERE id > $1 AND state = 'active'
               AND expires_on <= $3 ORDER BY id LIMIT $2""",
            _amsterdam_today(now),
        ):
            for row in rows:

                async def expire(
                    uow: Any,
                    youth_ref: str,
                    melding_id: int = row["id"],
                    youth_id: int = row["youth_id"],
                ) -> bool:
                    melding = await _active_melding(
                        uow.conn, melding_id, "expires_on <= $2", _amsterdam_today(now)
                    )
                    if melding is None:
                        return False
                    uow.emit(
                        *await end_melding(
                            uow.conn,
                            self._region,
                            melding,
                            youth_id=youth_id,
                            youth_ref=youth_ref,
                            reason="expired",
                            actor="system",
                            now=now,
                        )
                    )
                    return True

                if await self._for_youth(row["youth_id"], expire):
                    report.add("expired")

    # Rule 7: archived meldingen are purged 5 years after they ended.
    async def _archive_purge(self, now: datetime, report: SweepReport) -> None:
        async for rows in self._batches(
            """SELECT id, youth_id FROM melding WHERE id > $1 AND state = 'archived'
               AND purge_on <= $3 ORDER BY id LIMIT $2""",
            _amsterdam_today(now),
        ):
            for row in rows:

                async def purge(
                    uow: Any,
                    youth_ref: str,
                    melding_id: int = row["id"],
                    youth_id: int = row["youth_id"],
                ) -> bool:
                    deleted = await uow.conn.fetchval(
                        """DELETE FROM melding WHERE id = $1 AND state = 'archived'
                           AND purge_on <= $2 RETURNING melding_ref""",
                        melding_id,
                        _amsterdam_today(now),
                    )
                    if deleted is None:
                        return False
                    await audit(
                        uow.conn,
                        "purged",
                        "system",
                        melding_ref=deleted,
                        youth_ref=youth_ref,
                        detail={"reason": "archive_term"},
                        at=now,
                    )
                    await repo.delete_youth_if_empty(uow.conn, youth_id)
                    return True

                if await self._for_youth(row["youth_id"], purge):
                    report.add("archive_purged")

    # Lead: a match without a lead `regie_deadline_days` after it formed (or after its
    # lead was cleared) is escalated once per period.
    async def _escalation(self, now: datetime, report: SweepReport) -> None:
        days = self._region.region.regie_deadline_days
        coarse_cutoff = now - timedelta(days=days - 1)
        async for rows in self._batches(
            """SELECT id, youth_id, lead_needed_since FROM match_group
               WHERE id > $1 AND ended_at IS NULL AND lead_melding_id IS NULL
                 AND escalated_at IS NULL AND lead_needed_since <= $3
               ORDER BY id LIMIT $2""",
            coarse_cutoff,
            start=uuid.UUID(int=0),
        ):
            for row in rows:
                if not is_due(days_after(row["lead_needed_since"], days), now):
                    continue

                async def escalate(
                    uow: Any,
                    youth_ref: str,
                    match_id: uuid.UUID = row["id"],
                    youth_id: int = row["youth_id"],
                ) -> bool:
                    claimed = await uow.conn.fetchval(
                        """UPDATE match_group SET escalated_at = $2
                           WHERE id = $1 AND ended_at IS NULL AND lead_melding_id IS NULL
                             AND escalated_at IS NULL RETURNING true""",
                        match_id,
                        now,
                    )
                    if not claimed:
                        return False
                    members = await repo.active_members(uow.conn, match_id)
                    uow.emit(
                        await lead_changed_message(
                            uow.conn,
                            self._region,
                            match_id,
                            members,
                            None,
                            youth_id=youth_id,
                            escalated=True,
                        )
                    )
                    await audit(
                        uow.conn,
                        "lead_escalated",
                        "system",
                        youth_ref=youth_ref,
                        match_id=match_id,
                        at=now,
                    )
                    return True

                if await self._for_youth(row["youth_id"], escalate):
                    report.add("lead_escalated")

    # Informing: remind the owner once when the family's informing is not recorded.
    async def _inform_reminders(self, now: datetime, report: SweepReport) -> None:
        days = self._region.region.inform_deadline_days
        coarse_cutoff = now - timedelta(days=days - 1)
        async for rows in self._batches(
            """SELECT id, youth_id, reported_at FROM melding WHERE id > $1 AND state = 'active'
               AND informed IS NULL AND deferred_reason IS NULL AND inform_reminded_at IS NULL
               AND reported_at <= $3 ORDER BY id LIMIT $2""",
            coarse_cutoff,
        ):
            for row in rows:
                if not is_due(days_after(row["reported_at"], days), now):
                    continue

                async def remind(uow: Any, youth_ref: str, melding_id: int = row["id"]) -> bool:
                    target = await uow.conn.fetchrow(
                        """UPDATE melding SET inform_reminded_at = $2
                           WHERE id = $1 AND state = 'active' AND informed IS NULL
                             AND deferred_reason IS NULL AND inform_reminded_at IS NULL
                           RETURNING partner_id, melding_ref, reporter_email, inform_targets""",
                        melding_id,
                        now,
                    )
                    if target is None:
                        return False
                    uow.emit(notify_message(_reminder_event(target)))
                    await audit(
                        uow.conn,
                        "inform_reminded",
                        "system",
                        melding_ref=target["melding_ref"],
                        youth_ref=youth_ref,
                        at=now,
                    )
                    return True

                if await self._for_youth(row["youth_id"], remind):
                    report.add("inform_reminded")

    async def _housekeeping(self, now: datetime, report: SweepReport) -> None:
        for rule, sql, horizon in (
            (
                "inbox_expired",
                "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox WHERE received_at < $1 LIMIT $2)",
                DEDUP_WINDOW_DAYS,
            ),
            (
                "sent_email_expired",
                "DELETE FROM sent_email WHERE ctid IN (SELECT ctid FROM sent_email WHERE sent_at < $1 LIMIT $2)",
                SENT_EMAIL_RETENTION_DAYS,
            ),
            (
                "audit_expired",
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
                AUDIT_RETENTION_DAYS,
            ),
        ):
            while True:
                status = await self._pool.execute(sql, now - timedelta(days=horizon), self._batch)
                deleted = int(status.split()[-1])
                if deleted:
                    report.add(rule, deleted)
                if deleted < self._batch:
                    break


def _amsterdam_today(now: datetime) -> date:
    return amsterdam_date(now)


async def _active_melding(conn: Any, melding_id: int, condition: str, arg: Any) -> Any:
    row = await conn.fetchrow(
        f"""SELECT id, partner_id, melding_ref, state, registered_at, reporter_name,
                   reporter_email, reporter_phone, archive_signalled
            FROM melding WHERE id = $1 AND state = 'active' AND {condition}""",  # noqa: S608
        melding_id,
        arg,
    )
    return repo.melding_from_row(row) if row else None


def _reminder_event(target: Any) -> NotifyEvent:
    event_id = uuid.uuid4()
    inform = list(target["inform_targets"])
    body = InformReminder(type="inform.reminder", melding_ref=target["melding_ref"], inform=inform)
    return NotifyEvent(
        event_id=event_id,
        notices=[
            PartnerNotice(
                partner_id=target["partner_id"],
                message_id=derived_id(event_id, "notice", target["partner_id"]),
                message_type="inform.reminder",
                body=body.model_dump(mode="json"),
            )
        ],
        emails=[
            EmailJob(
                message_id=derived_id(event_id, "email", "reporter"),
                to=target["reporter_email"],
                template="inform_reminder",
                data={"melding_ref": target["melding_ref"], "inform": inform},
            )
        ],
    )
