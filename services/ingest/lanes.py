"""In front of live ingest: a partner's messages beyond its live rate go to the bulk
lane unread, so that a flooding partner's backlog in `vi.ingest` drains at the speed
of a re-publish, not of validation and matching, and everything after ingest serves
the other partners first.

Messages the sorter cannot attribute (no or unknown `user_id`) stay in the live lane,
where ingest answers or rejects them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from services.ingest.handler import IngestHandler
from services.ingest.quota import PartnerQuotas
from shared import metrics
from shared.amqp.consumer import (
    ATTEMPT_HEADER,
    NO_MESSAGE_ID_HEADER,
    REPLAYED_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    Delivery,
)
from shared.amqp.publisher import Outgoing
from shared.amqp.topology import INGEST_QUEUE, bulk
from shared.logs import get_logger
from shared.service import Runtime

log = get_logger(__name__)


class LaneSorter:
    def __init__(
        self,
        runtime: Runtime,
        handler: IngestHandler,
        quotas: PartnerQuotas | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rt = runtime
        self._handler = handler
        self._quotas = quotas or PartnerQuotas()
        self._clock = clock

    async def __call__(self, delivery: Delivery) -> None:
        if await self._keep([delivery]):
            await self._handler(delivery)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        keep = await self._keep(deliveries)
        if keep:
            await self._handler.handle_batch(keep)

    async def _keep(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The deliveries to handle here; the others are re-published (confirmed) to
        the bulk lane before this returns."""
        region = await self._rt.region.get()
        rules, now = region.region, self._clock()
        keep: list[Delivery] = []
        divert: list[tuple[Delivery, str]] = []
        for delivery in deliveries:
            user_id = delivery.user_id
            partner = region.partners_by_broker_user.get(user_id) if user_id else None
            if partner is None or self._quotas.admit(
                partner.id, rate=rules.live_rate, burst=rules.live_burst, now=now
            ):
                keep.append(delivery)
            else:
                divert.append((delivery, partner.id))
        if divert:
            await self._rt.publisher.publish_many([_to_bulk(d) for d, _ in divert])
            for _, partner_id in divert:
                metrics.LANE_DIVERTED.labels(self._rt.service, partner_id).inc()
            log.info("lane_diverted_to_bulk", messages=len(divert))
        return keep


def _to_bulk(delivery: Delivery) -> Outgoing:
    """The message as the runtime's copy for `vi.ingest.bulk`. The sender, routing key
    and whether it may have been handled before are written by us, never taken from
    headers a partner set."""
    return delivery.copy_for_runtime(
        bulk(INGEST_QUEUE),
        {
            USER_ID_HEADER: delivery.user_id or "",
            ROUTING_KEY_HEADER: delivery.routing_key,
            NO_MESSAGE_ID_HEADER: delivery.message.message_id is None,
            REPLAYED_HEADER: delivery.seen_before,
            ATTEMPT_HEADER: 0,
        },
    )
