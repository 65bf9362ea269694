"""One sweep of every time-driven rule, as of a given moment.

Each rule walks its candidates in bounded pages (keyset pagination) and handles each
due row in its own short transaction under the youth's row lock. The lock is first
tried with SKIP LOCKED, so a replica does not queue behind a youth that is busy
elsewhere (another retention replica, the matcher); what was skipped is taken up again
at the end of the rule's pass, this time waiting for the lock, and re-checked under
it. Memory and transaction size stay flat however much data there is; a sweep run
twice, or by two replicas at once, acts exactly once on every due row, and a sweep
that returns has handled everything that was due when it started.

`rehearse` runs the very same sweep inside one transaction that is rolled back: what
it reports is exactly what a sweep would do, and nothing is changed or published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from services.retention.rules import RULES, Rule, Target
from shared.db.expiry import database_now, delete_older_than
from shared.db.inbox import DEDUP_WINDOW_DAYS
from shared.db.journal import Journal
from shared.db.outbox import UnitOfWork
from shared.db.pool import Conn
from shared.index import repository as repo
from shared.logs import get_logger
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfig

log = get_logger(__name__)

PAGE = 500
AUDIT_RETENTION_DAYS = 7 * 366  # outlives the longest a melding can exist (2 + 5 years)


@dataclass(frozen=True)
class ExpiringRows:
    name: str
    meaning: str
    table: str
    column: str
    days: int
    # Rows that only serve deduplication expire by the database's own clock, never by
    # the moment a sweep runs as of: a sweep as of a future time (`retention run --now`,
    # to test or catch up) must not forget which messages and e-mails were handled.
    real_clock: bool


# Housekeeping: rows that only serve deduplication, and the audit log's own term.
EXPIRING_ROWS = (
    ExpiringRows(
        "inbox_expired",
        f"message ids past the {DEDUP_WINDOW_DAYS}-day dedup window (by the real clock)",
        "inbox",
        "received_at",
        DEDUP_WINDOW_DAYS,
        real_clock=True,
    ),
    ExpiringRows(
        "arrival_expired",
        f"open arrivals older than the {DEDUP_WINDOW_DAYS}-day dedup window (their ack was lost)",
        "arrival",
        "received_at",
        DEDUP_WINDOW_DAYS,
        real_clock=True,
    ),
    ExpiringRows(
        "arrival_answer_expired",
        f"answered marks of publishes past the {DEDUP_WINDOW_DAYS}-day dedup window",
        "arrival_answered",
        "answered_at",
        DEDUP_WINDOW_DAYS,
        real_clock=True,
    ),
    ExpiringRows(
        "sent_email_expired",
        f"records of sent e-mails older than {DEDUP_WINDOW_DAYS} days (by the real clock)",
        "sent_email",
        "sent_at",
        DEDUP_WINDOW_DAYS,
        real_clock=True,
    ),
    ExpiringRows(
        "audit_expired",
        "audit log entries past their term of 7 years",
        "audit_log",
        "at",
        AUDIT_RETENTION_DAYS,
        real_clock=False,
    ),
)

# Every count a sweep reports, in the order it acts, with what it means.
STEPS: tuple[tuple[str, str], ...] = tuple((r.name, r.meaning) for r in RULES) + tuple(
    (e.name, e.meaning) for e in EXPIRING_ROWS
)


class UnitsOfWork(Protocol):
    """Where a rule's action runs: the outbox (for real), or a savepoint (rehearsal)."""

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass
class SweepReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, rule: str, n: int = 1) -> None:
        self.counts[rule] = self.counts.get(rule, 0) + n


class Sweep:
    def __init__(
        self,
        pool: asyncpg.Pool[Any] | Conn,
        outbox: UnitsOfWork,
        region: RegionConfig,
        pseudonyms: Pseudonymizer,
        *,
        page: int = PAGE,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._region = region
        self._pseudonyms = pseudonyms
        self._page = page

    async def run(self, now: datetime) -> SweepReport:
        report = await self._sweep(now)
        log.info("sweep_done", as_of=now.isoformat(), **report.counts)
        return report

    async def _sweep(self, now: datetime) -> SweepReport:
        report = SweepReport()
        for rule in RULES:
            await self._apply(rule, now, report)
        await self._housekeeping(now, report)
        return report

    async def still_due(self, rule: Rule, now: datetime) -> int:
        """How many rows `rule` would act on as of `now` (after a sweep: none, unless
        its action keeps failing)."""
        return sum([1 async for _ in self._due_rows(rule, now)])

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A connection for one statement outside any action's transaction: one from
        the pool for as long as it takes, or the rehearsal's own."""
        if isinstance(self._pool, asyncpg.Pool):
            async with self._pool.acquire() as conn:
                yield conn
        else:
            yield self._pool

    async def _due_rows(self, rule: Rule, now: datetime) -> AsyncIterator[asyncpg.Record]:
        last = rule.first_key
        threshold = rule.threshold(now, self._region)
        while True:
            async with self._connection() as conn:
                rows = await rule.candidates(conn, threshold, last, self._page)
            for row in rows:
                if rule.due(row, now, self._region):
                    yield row
            if len(rows) < self._page:
                break
            last = rows[-1]["id"]

    async def _apply(self, rule: Rule, now: datetime, report: SweepReport) -> None:
        busy: list[asyncpg.Record] = []
        async for row in self._due_rows(rule, now):
            outcome = await self._act(rule, row, now, wait=False)
            if outcome is None:
                busy.append(row)
            elif outcome:
                report.add(rule.name, outcome)
        # Rows whose youth was locked elsewhere: wait for the lock now. Whoever held it
        # may have done the work already; the action's re-check then finds nothing.
        # (Bounded: at most the candidates of this pass, and usually none.)
        for row in busy:
            if outcome := await self._act(rule, row, now, wait=True):
                report.add(rule.name, outcome)

    async def _act(
        self, rule: Rule, row: asyncpg.Record, now: datetime, *, wait: bool
    ) -> int | None:
        """How many due things the rule acted on (0 when nothing was still due), None
        if the youth was locked elsewhere and ``wait`` is false."""
        async with self._outbox.unit_of_work() as uow:
            youth = await repo.lock_youth(uow.conn, row["youth_id"], skip_locked=not wait)
            if youth is None:
                if wait:
                    return 0
                return None if await repo.youth_exists(uow.conn, row["youth_id"]) else 0
            youth_ref = self._pseudonyms.audit_ref(youth.identity_hash)
            target = Target(youth_id=youth.id, row=row, pseudonyms=self._pseudonyms)
            journal = Journal()
            acted = await rule.action(uow, journal, self._region, target, youth_ref, now)
            await journal.write(uow.conn)
            return acted

    async def _housekeeping(self, now: datetime, report: SweepReport) -> None:
        async with self._connection() as conn:
            real_now = await database_now(conn)
        for rows in EXPIRING_ROWS:
            cutoff = (real_now if rows.real_clock else now) - timedelta(days=rows.days)
            while True:
                async with self._connection() as conn:
                    deleted = await delete_older_than(
                        conn, rows.table, rows.column, cutoff, self._page
                    )
                if deleted:
                    report.add(rows.name, deleted)
                if deleted < self._page:
                    break


class _Savepoints:
    """Units of work as savepoints of one open transaction. What they emit is dropped:
    a rehearsal publishes nothing."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with self._conn.transaction():
            yield UnitOfWork(self._conn)


async def rehearse(
    pool: asyncpg.Pool[Any],
    region: RegionConfig,
    pseudonyms: Pseudonymizer,
    now: datetime,
    *,
    page: int = PAGE,
) -> SweepReport:
    """What a sweep as of `now` would do: the same sweep, in one transaction that is
    rolled back. The rows it would touch stay locked until it ends."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            sweep = Sweep(conn, _Savepoints(conn), region, pseudonyms, page=page)
            report = await sweep._sweep(now)
        finally:
            await transaction.rollback()
    log.info("sweep_rehearsed", as_of=now.isoformat(), **report.counts)
    return report
