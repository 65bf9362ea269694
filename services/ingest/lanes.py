"""In front of live ingest: fair shares between partners.

Each partner has a token bucket (`quota.py`, rate and burst from the region config).
Its messages within its share are handled as live ones; those beyond it are
validated here all the same (cheap, and in arrival order, so the live queue drains at
ingest's speed), but their commands go on in the bulk lane: the matcher and notifier
serve them only with capacity other partners' live traffic leaves.

Messages the sorter cannot attribute (no or unknown `user_id`) stay live, where ingest
answers or rejects them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from services.ingest.handler import IngestHandler
from services.ingest.quota import PartnerQuotas
from shared import metrics
from shared.amqp.consumer import Delivery
from shared.lanes import Lane
from shared.logs import get_logger
from shared.service import Runtime

log = get_logger(__name__)


class LaneSorter:
    def __init__(
        self,
        runtime: Runtime,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._handlers = {lane: IngestHandler(runtime, lane=lane) for lane in Lane}
        self._quotas = quotas or PartnerQuotas()
        self._clock = clock

    async def __call__(self, delivery: Delivery) -> None:
        [(lane, _)] = (await self._sort([delivery])).items()
        await self._handlers[lane](delivery)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        for lane, group in (await self._sort(deliveries)).items():
            await self._handlers[lane].handle_batch(group)

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """Confirmed acks close arrivals, whichever lane the message went on in."""
        await self._handlers[Lane.LIVE].acked(deliveries)

    async def _sort(self, deliveries: Sequence[Delivery]) -> dict[Lane, list[Delivery]]:
        """The deliveries by the lane they go on in (live first), none empty."""
        region = await self._rt.region.get()
        rules, now = region.region, self._clock()
        lanes: dict[Lane, list[Delivery]] = {}
        for delivery in deliveries:
            user_id = delivery.user_id
            partner = region.partners_by_broker_user.get(user_id) if user_id else None
            lane = Lane.LIVE
            if partner is not None and not self._quotas.admit(
                partner.id, rate=rules.live_rate, burst=rules.live_burst, now=now
            ):
                lane = Lane.BULK
                metrics.LANE_DIVERTED.labels(self._rt.service, partner.id).inc()
            lanes.setdefault(lane, []).append(delivery)
        if Lane.BULK in lanes:
            log.info("lane_diverted_to_bulk", messages=len(lanes[Lane.BULK]))
        return dict(sorted(lanes.items(), key=lambda item: item[0] is not Lane.LIVE))
