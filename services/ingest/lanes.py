"""In front of ingest: fair shares between partners.

Each partner has a token bucket (`quota.py`, rate and burst from the region config).
Ingest's first pass (`FirstPass`) reads `vi.ingest` and validates nothing: it reads a
message's `user_id` only, records the arrivals of a batch (one statement), and moves
the messages in packs (`pack.py`): those within their partner's share to
`vi.ingest.admitted`, a live queue, and those beyond it to `vi.ingest.bulk`, where
they are handled with the capacity live traffic leaves (both unpacked in `bulk.py`).
So a flood ahead of another partner's message costs that message only the first
pass's read of the flood, not its validation, transactions and e-mails.

Reading is most of what the pass costs (docs/performance.md, "Receiving cheaply"), so
it reads through the raw consumer (`shared.amqp.compat.raw`), at well under half the
services' consumer's cost.

Nothing is lost and nothing is answered twice: the originals are acked only once the
packs are confirmed, so a crash in between delivers them again and they are packed
again, bound (as redeliveries) to the arrivals recorded the first time, which are
closed only after the ack of the originals is confirmed; each arrival is answered
once (`shared.db.arrivals`).

Messages the pass cannot attribute (no or unknown `user_id`, the portal's login) go
live, where ingest answers or rejects them at once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from services.ingest.handler import close_arrivals
from services.ingest.pack import PACK_TYPE, pack
from services.ingest.quota import PartnerQuotas
from shared import metrics
from shared.amqp.consuming import Delivery
from shared.amqp.publisher import Publisher
from shared.amqp.topology import ADMITTED_QUEUE, INGEST_QUEUE
from shared.contract.validation import check_message_id
from shared.db import arrivals
from shared.db.arrivals import Arrival
from shared.envelopes import chunked
from shared.lanes import Lane
from shared.logs import get_logger
from shared.outgoing import OutboundMessage
from shared.region.store import RegionCache

log = get_logger(__name__)

# The raw consumer's batches and prefetch for the first pass: a batch is a DB statement
# and a confirmed publish of its packs, so the bigger, the cheaper per message.
FIRST_PASS_BATCH = 128
FIRST_PASS_PREFETCH = 512

# A delivery and the partner whose user_id it bears (None: no partner's).
Attributed = tuple[Delivery, str | None]


class FirstPass:
    """Ingest's first pass over `vi.ingest`: every message packed, unvalidated, to the
    live `vi.ingest.admitted` or, beyond its partner's share, to `vi.ingest.bulk`."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        publisher: Publisher,
        region: RegionCache,
        *,
        service: str,
        service_user: str,
        pack_size: int,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._region = region
        # The service name the diverted messages are counted under.
        self._service = service
        # The services' login, which publishes the packs.
        self._service_user = service_user
        # Messages per pack at most: a pack is handled as one batch where it is unpacked.
        self._pack_size = pack_size
        self._quotas = quotas or PartnerQuotas()
        self._clock = clock

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        """Returns once the broker confirmed every pack."""
        live, beyond = await self._sort(deliveries)
        await self._record_arrivals([*live, *beyond])
        await self._publisher.publish(
            *self._packs(ADMITTED_QUEUE, [d for d, _ in live]),
            *self._packs(Lane.BULK.of(INGEST_QUEUE), [d for d, _ in beyond]),
        )
        if beyond:
            log.info("lane_diverted_to_bulk", messages=len(beyond))

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """The originals can no longer be delivered: close their arrivals."""
        await close_arrivals(self._pool, deliveries)

    async def _sort(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[Attributed], list[Attributed]]:
        """The deliveries within their partner's share (and those of no partner), and
        those beyond it, each with its partner's id."""
        region = await self._region.get()
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
            metrics.LANE_DIVERTED.labels(self._service, partner_id).inc(count)
        return live, beyond

    async def _record_arrivals(self, attributed: Sequence[Attributed]) -> None:
        """Record the arrivals of the deliveries of a partner with a usable message_id
        (one statement) and bind each delivery to its own; the others have none
        (ingest answers them like any, after the pack)."""
        keyed = [
            (d, p)
            for d, p in attributed
            if p is not None and check_message_id(d.message_id) is None
        ]
        if not keyed:
            return
        async with self._pool.acquire() as conn:
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

    def _packs(self, queue: str, deliveries: Sequence[Delivery]) -> list[OutboundMessage]:
        """`deliveries` in packs of at most `pack_size` each, to `queue`."""
        return [
            OutboundMessage(
                "",
                queue,
                pack(part),
                message_type=PACK_TYPE,
                message_id=str(uuid.uuid4()),
                user_id=self._service_user,
            )
            for part in chunked(deliveries, self._pack_size)
        ]
