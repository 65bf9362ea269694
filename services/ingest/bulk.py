"""The bulk lane of ingest (`vi.ingest.bulk`): onboarding loads, which partners
publish there, and the packs of beyond-share messages live ingest moves there
(`lanes.py`). Both are handled like live messages, their commands going on in the
bulk lane; a pack's messages keep the arrivals recorded when they were packed.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.ingest.handler import IngestHandler
from services.ingest.pack import PACK_TYPE, Inbound, unpack
from shared.amqp.consuming import Delivery, PoisonMessage
from shared.lanes import LiveFirst


class BulkIngest:
    def __init__(self, handler: IngestHandler, lanes: LiveFirst | None = None) -> None:
        # Its commands go on in the bulk lane.
        self._handler = handler
        self._lanes = lanes or LiveFirst()

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        """Each pack as a batch of its own (a pack is as big as a batch already), the
        onboarding messages as one. Between packs, live work goes first: a batch of
        packs holds up to a batch of batches."""
        loose: list[Inbound] = []
        first = True
        for delivery in deliveries:
            if _is_pack(delivery):
                if not first:
                    await self._lanes.after_live()
                await self._handle(_unpacked(delivery))
                first = False
            else:
                loose.append(delivery)
        await self._handle(loose)

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """Confirmed acks close the arrivals of onboarding messages. A pack's are
        closed by live ingest, once the originals can no longer be delivered."""
        await self._handler.acked([d for d in deliveries if not _is_pack(d)])

    async def _handle(self, messages: Sequence[Inbound]) -> None:
        if messages:
            await self._handler(messages)


def _is_pack(delivery: Delivery) -> bool:
    # Only the services' own login can publish as it (the broker checks user_id).
    message = delivery.message
    return message.type == PACK_TYPE and message.user_id == delivery.service_user


def _unpacked(delivery: Delivery) -> list[Inbound]:
    try:
        return list(
            unpack(
                delivery.body,
                service_user=delivery.service_user,
                seen_before=delivery.seen_before,
            )
        )
    except ValueError as exc:
        raise PoisonMessage(str(exc)) from exc
