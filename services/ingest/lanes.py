"""In front of live ingest: fair shares between partners.

Each partner has a token bucket (`quota.py`, rate and burst from the region config).
Its messages within its share are handled as live ones. Those beyond it are not even
validated here: this first pass reads only their `user_id`, records their arrivals
(one statement), and moves them in packs (`pack.py`) to `vi.ingest.bulk`, where
they are validated and handled with the capacity live traffic leaves. So a flood
ahead of another partner's message costs that message only ingest's read of the
flood, not its validation, transactions and e-mails.

Reading is most of what is left (docs/performance.md, "Receiving cheaply"), so the
first pass (`FirstPass`) reads `vi.ingest` through the raw consumer
(`shared.amqp.compat.raw`), at well under half the services' consumer's cost, and
validates nothing itself: it packs the messages within their share too and moves
them to `vi.ingest.admitted`, a live queue that ingest handles like any (the packs
are unpacked there, `bulk.py`). `LaneSorter` is the earlier first pass, which
handles the messages within their share itself (`VI_INGEST_FIRST_PASS=runtime`).

Nothing is lost and nothing is answered twice: the originals are acked only once the
packs are confirmed, so a crash in between delivers them again and they are packed
again, bound (as redeliveries) to the arrivals recorded the first time, which are
closed only after the ack of the originals is confirmed; each arrival is answered
once (`shared.db.arrivals`).

Messages the sorter cannot attribute (no or unknown `user_id`, the portal's login)
go live, where ingest answers or rejects them at once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from services.ingest.handler import IngestHandler
from services.ingest.pack import PACK_TYPE, pack
from services.ingest.quota import PartnerQuotas
from shared import metrics
from shared.amqp.consumer import Delivery
from shared.amqp.publisher import Outgoing
from shared.amqp.topology import ADMITTED_QUEUE, INGEST_QUEUE
from shared.contract.validation import check_message_id
from shared.db import arrivals
from shared.db.arrivals import Arrival
from shared.envelopes import chunked
from shared.lanes import Lane
from shared.logs import get_logger
from shared.service import Runtime

log = get_logger(__name__)

# The raw consumer's batches and prefetch for the first pass: a batch is a DB statement
# and a confirmed publish of its packs, so the bigger, the cheaper per message.
FIRST_PASS_BATCH = 128
FIRST_PASS_PREFETCH = 512

# A delivery and the partner whose user_id it bears (None: no partner's).
Attributed = tuple[Delivery, str | None]


class Sorter:
    """Which deliveries are within their partner's share (and those of no partner)."""

    def __init__(
        self,
        runtime: Runtime,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._quotas = quotas or PartnerQuotas()
        self._clock = clock

    async def sort(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[Attributed], list[Attributed]]:
        """The deliveries within their partner's share (and those of no partner), and
        those beyond it, each with its partner's id."""
        region = await self._rt.region.get()
        rules, now = region.region, self._clock()
        live: list[Attributed] = []
        beyond: list[Attributed] = []
        for delivery in deliveries:
            user_id = delivery.user_id
            partner = region.partners_by_broker_user.get(user_id) if user_id else None
            if partner is None:
                live.append((delivery, None))
            elif self._quotas.admit(
                partner.id, rate=rules.live_rate, burst=rules.live_burst, now=now
            ):
                live.append((delivery, partner.id))
            else:
                beyond.append((delivery, partner.id))
        for partner_id, count in Counter(p for _, p in beyond).items():
            metrics.LANE_DIVERTED.labels(self._rt.service, partner_id).inc(count)
        return live, beyond


async def record_arrivals(runtime: Runtime, attributed: Sequence[Attributed]) -> None:
    """Record the arrivals of the deliveries of a partner with a usable message_id
    (one statement) and bind each delivery to its own; the others have none (ingest
    answers them like any, after the pack)."""
    keyed = [
        (d, p) for d, p in attributed if p is not None and check_message_id(d.message_id) is None
    ]
    if not keyed:
        return
    async with runtime.pool.acquire() as conn:
        ids = await arrivals.record(
            conn,
            [
                Arrival(p, d.message_id or "", d.seen_before, known=d.binding.arrival_id)
                for d, p in keyed
                if p is not None
            ],
        )
    for (delivery, _), arrival_id in zip(keyed, ids, strict=True):
        delivery.binding.arrival_id = arrival_id


def packs(runtime: Runtime, queue: str, deliveries: Sequence[Delivery]) -> list[Outgoing]:
    """`deliveries` in packs of at most a batch each, to `queue`."""
    return [
        Outgoing(
            "",
            queue,
            pack(part),
            message_id=str(uuid.uuid4()),
            message_type=PACK_TYPE,
            user_id=runtime.settings.service_broker_user,
        )
        for part in chunked(deliveries, runtime.settings.batch_size)
    ]


class FirstPass:
    """Ingest's first pass over `vi.ingest` on the raw consumer: every message packed,
    unvalidated, to the live `vi.ingest.admitted` or, beyond its partner's share, to
    `vi.ingest.bulk`."""

    def __init__(
        self,
        runtime: Runtime,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._sorter = Sorter(runtime, quotas, clock)
        # Only for closing arrivals: the first pass answers nothing itself.
        self._answers = IngestHandler(runtime, lane=Lane.LIVE)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Returns once the broker confirmed every pack."""
        live, beyond = await self._sorter.sort(deliveries)
        await record_arrivals(self._rt, [*live, *beyond])
        await self._rt.publisher.publish_many(
            packs(self._rt, ADMITTED_QUEUE, [d for d, _ in live])
            + packs(self._rt, Lane.BULK.of(INGEST_QUEUE), [d for d, _ in beyond])
        )
        if beyond:
            log.info("lane_diverted_to_bulk", messages=len(beyond))

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """The originals can no longer be delivered: close their arrivals."""
        await self._answers.acked(deliveries)


class LaneSorter:
    """The earlier first pass, on the services' consumer: messages within their share
    handled here as live ones, those beyond it packed to `vi.ingest.bulk`."""

    def __init__(
        self,
        runtime: Runtime,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._live = IngestHandler(runtime, lane=Lane.LIVE)
        self._sorter = Sorter(runtime, quotas, clock)

    async def __call__(self, delivery: Delivery) -> None:
        await self.handle_batch([delivery])

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        attributed, beyond = await self._sorter.sort(deliveries)
        live = [d for d, _ in attributed]
        if len(live) == 1:
            await self._live(live[0])
        elif live:
            await self._live.handle_batch(live)
        await self._divert(beyond)

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """Confirmed acks close arrivals, whichever lane the message went on in."""
        await self._live.acked(deliveries)

    async def _divert(self, beyond: Sequence[Attributed]) -> None:
        """Record the arrivals of `beyond`, then move them in one pack to the bulk
        ingest queue (returning once the broker confirmed it)."""
        if not beyond:
            return
        await record_arrivals(self._rt, beyond)
        await self._rt.publisher.publish_many(
            packs(self._rt, Lane.BULK.of(INGEST_QUEUE), [d for d, _ in beyond])
        )
        log.info("lane_diverted_to_bulk", messages=len(beyond))
