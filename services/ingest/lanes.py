"""In front of live ingest: fair shares between partners.

Each partner has a token bucket (`quota.py`, rate and burst from the region config).
Its messages within its share are handled as live ones. Those beyond it are not even
validated here: this first pass reads only their `user_id`, records their arrivals
(one statement), and moves them in one pack (`pack.py`) to `vi.ingest.bulk`, where
they are validated and handled with the capacity live traffic leaves. So a flood
ahead of another partner's message costs that message only ingest's read of the
flood, not its validation, transactions and e-mails (the read is still not free: see
docs/performance.md, "Lanes").

Nothing is lost and nothing is answered twice: the originals are acked only once the
pack is confirmed, so a crash in between delivers them again and they are packed
again, bound (as redeliveries) to the arrivals recorded the first time, which are
closed only after the ack of the originals is confirmed; each arrival is answered
once (`shared.db.arrivals`).

Messages the sorter cannot attribute (no or unknown `user_id`, the portal's login)
stay live, where ingest answers or rejects them at once.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from services.ingest.handler import IngestHandler
from services.ingest.pack import PACK_TYPE, pack
from services.ingest.quota import PartnerQuotas
from shared import metrics
from shared.amqp.consuming import Delivery
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INGEST_QUEUE
from shared.contract.validation import check_message_id
from shared.db import arrivals
from shared.db.arrivals import Arrival
from shared.lanes import Lane
from shared.logs import get_logger
from shared.outgoing import OutboundMessage
from shared.region.store import RegionCache

log = get_logger(__name__)


class LaneSorter:
    def __init__(
        self,
        live: IngestHandler,
        pool: asyncpg.Pool[Any],
        publisher: Publisher,
        region: RegionCache,
        *,
        service: str,
        service_user: str,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Live ingest, which handles the messages within their share.
        self._live = live
        self._pool = pool
        self._publisher = publisher
        self._region = region
        # The service name the diverted messages are counted under.
        self._service = service
        # The services' login, which publishes the packs.
        self._service_user = service_user
        self._quotas = quotas or PartnerQuotas()
        self._clock = clock

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        live, beyond = await self._sort(deliveries)
        if live:
            await self._live(live)
        await self._divert(beyond)

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """Confirmed acks close arrivals, whichever lane the message went on in."""
        await self._live.acked(deliveries)

    async def _sort(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[Delivery], list[tuple[Delivery, str]]]:
        """The deliveries within their partner's share (and those of no partner), and
        those beyond it with their partner's id."""
        region = await self._region.get()
        rules, now = region.region, self._clock()
        live: list[Delivery] = []
        beyond: list[tuple[Delivery, str]] = []
        for delivery in deliveries:
            user_id = delivery.user_id
            partner = region.partners_by_broker_user.get(user_id) if user_id else None
            if partner is None or self._quotas.admit(
                partner.id, rate=rules.live_rate, burst=rules.live_burst, now=now
            ):
                live.append(delivery)
            else:
                beyond.append((delivery, partner.id))
        for partner_id, count in Counter(p for _, p in beyond).items():
            metrics.LANE_DIVERTED.labels(self._service, partner_id).inc(count)
        return live, beyond

    async def _divert(self, beyond: Sequence[tuple[Delivery, str]]) -> None:
        """Record the arrivals of `beyond`, then move them in one pack to the bulk
        ingest queue (returning once the broker confirmed it). A message without a
        usable message_id has no arrival; the bulk lane answers it like live ingest."""
        if not beyond:
            return
        keyed = [(d, p) for d, p in beyond if check_message_id(d.message_id) is None]
        if keyed:
            async with self._pool.acquire() as conn:
                ids = await arrivals.record(
                    conn,
                    [
                        Arrival(p, d.message_id or "", d.seen_before, known=d.binding.arrival_id)
                        for d, p in keyed
                    ],
                )
            for (delivery, _), arrival_id in zip(keyed, ids, strict=True):
                delivery.binding.arrival_id = arrival_id
        await self._publisher.publish(
            OutboundMessage(
                "",
                Lane.BULK.of(INGEST_QUEUE),
                pack([d for d, _ in beyond]),
                message_type=PACK_TYPE,
                message_id=str(uuid.uuid4()),
                user_id=self._service_user,
            )
        )
        log.info("lane_diverted_to_bulk", messages=len(beyond))
