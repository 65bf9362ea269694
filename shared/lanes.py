"""Live and bulk lanes: live traffic is not queued behind an onboarding load, nor
behind the matching and e-mails of a partner sending beyond its fair share.

Every work queue has a bulk twin (`shared.amqp.topology.bulk`). Onboarding messages
reach `vi.ingest.bulk` by their routing key; ingest moves a partner's live messages
beyond its fair share there, unread, in packs (`services/ingest/lanes.py`). A
message keeps its lane on every later hop: the commands ingest forwards, the notify
events the matcher writes and the e-mail jobs the notifier makes go to the bulk twin
of the next queue. Each service consumes both twins and starts bulk work only while
no live work is in hand (`LiveFirst`), so bulk uses the capacity live traffic leaves
over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Any, TypeVar

from aio_pika.abc import AbstractRobustConnection

from shared.amqp.topology import (
    ADMITTED_QUEUE,
    INGEST_QUEUE,
    INTERNAL_EXCHANGE,
    MATCHER_QUEUE,
    NOTIFIER_QUEUE,
    bulk,
)
from shared.logs import describe_error, get_logger
from shared.outgoing import OutboundMessage

log = get_logger(__name__)

# The live queues whose backlog holds back bulk work in every service: the stages
# that share the CPU and the database. (Not vi.email: its pace is the mail relay's.)
WATCHED_LIVE_QUEUES = (INGEST_QUEUE, ADMITTED_QUEUE, MATCHER_QUEUE, NOTIFIER_QUEUE)
WATCH_INTERVAL_SECONDS = 0.1
# A look at the live queues older than this is not trusted: bulk work that comes after
# a pause waits for a fresh one. Younger looks are, so back-to-back bulk batches do not
# each wait for a look of their own (that capped a bulk lane at one batch per interval).
LOOK_FRESH_SECONDS = 1.0

T = TypeVar("T")
Work = Callable[[T], Coroutine[Any, Any, None]]


class Lane(StrEnum):
    LIVE = "live"
    BULK = "bulk"

    def of(self, name: str) -> str:
        """A work queue or internal routing key, in this lane."""
        return bulk(name) if self is Lane.BULK else name

    @property
    def batch_concurrency(self) -> int | None:
        """Batches handled at once from this lane's queue (None: the setting). One
        for bulk, so a live message shares the process with one bulk batch at most."""
        return 1 if self is Lane.BULK else None


def in_lane(messages: Sequence[OutboundMessage], lane: Lane) -> list[OutboundMessage]:
    """`messages` with those for an internal work queue sent to its twin in `lane`;
    receipts and notices (to partners) as they were."""
    return [
        replace(m, routing_key=lane.of(m.routing_key)) if m.exchange == INTERNAL_EXCHANGE else m
        for m in messages
    ]


class LiveFirst:
    """Bulk work starts only while no live work is in hand in this process and, with
    `watch` running, no live queue of the system has messages waiting: the services
    share the machine, so bulk work in one would slow live work in another.

    Work already started is not interrupted: a live message shares the CPU and the
    database with the bulk batch that was running when it came (one per bulk queue,
    `Lane.batch_concurrency`), but never waits for the bulk backlog.

    The live queues are looked at only while bulk work is in hand: a process with no
    bulk work asks the broker nothing.
    """

    def __init__(self) -> None:
        self._live = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._bulk = 0
        self._bulk_in_hand = asyncio.Event()
        self._watching = False
        # Whether a live queue had messages at the last look, and when it was.
        self._backlog = False
        self._looked_at = -LOOK_FRESH_SECONDS
        self._looked = asyncio.Event()
        self.looks = 0

    async def watch(
        self,
        connection: AbstractRobustConnection,
        queues: Sequence[str] = WATCHED_LIVE_QUEUES,
        interval: float = WATCH_INTERVAL_SECONDS,
    ) -> None:
        """Look whether a live queue has messages waiting, every `interval` while bulk
        work is in hand (for ever)."""
        failing = False
        self._watching = True
        try:
            while True:
                try:
                    async with connection.channel() as channel:
                        # The protocol channel: a fresh declare-ok each time, nothing cached.
                        underlay = await channel.get_underlay_channel()
                        while True:
                            await self._bulk_in_hand.wait()
                            waiting = [
                                await underlay.queue_declare(q, passive=True) for q in queues
                            ]
                            self.looks += 1
                            self._noted(any(w.message_count for w in waiting))
                            failing = False
                            await asyncio.sleep(interval)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Without the broker there is no work either; look again soon. One
                    # line per outage: the backend watch already reports the broker's state.
                    self._noted(False)
                    if not failing:
                        log.info("live_backlog_watch_paused", error=describe_error(exc, 300))
                    failing = True
                    await asyncio.sleep(1.0)
        finally:
            self._watching = False

    def _noted(self, backlog: bool) -> None:
        self._backlog = backlog
        self._looked_at = asyncio.get_running_loop().time()
        self._looked.set()

    @property
    def live_in_hand(self) -> int:
        return self._live

    def serve(self, lane: Lane, handler: Callable[[T], Awaitable[None]]) -> Work[T]:
        """`handler` run as work of `lane`."""
        return self._live_work(handler) if lane is Lane.LIVE else self._bulk_work(handler)

    def _live_work(self, handler: Callable[[T], Awaitable[None]]) -> Work[T]:
        async def run(work: T) -> None:
            self._live += 1
            self._idle.clear()
            try:
                await handler(work)
            finally:
                self._live -= 1
                if self._live == 0:
                    self._idle.set()

        return run

    def _bulk_work(self, handler: Callable[[T], Awaitable[None]]) -> Work[T]:
        async def run(work: T) -> None:
            self._bulk += 1
            self._bulk_in_hand.set()
            try:
                await self.after_live()
                await handler(work)
            finally:
                self._bulk -= 1
                if self._bulk == 0:
                    self._bulk_in_hand.clear()

        return run

    async def after_live(self) -> None:
        """Return once no live work is in hand here nor waiting in a live queue. Bulk
        work calls it before it starts, and between the parts of a long piece of work
        (a batch of packs) so that it yields as a short one would."""
        while True:
            if self._live:
                await self._idle.wait()
            elif not self._watching:
                return  # without the watch, only this process's live work counts
            elif self._look_is_stale():
                self._looked.clear()
                await self._looked.wait()  # bulk work is in hand: the watch looks now
            elif self._backlog:
                await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            else:
                return

    def _look_is_stale(self) -> bool:
        return asyncio.get_running_loop().time() - self._looked_at > LOOK_FRESH_SECONDS
