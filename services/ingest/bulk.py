"""Ingest's queues of packs (`lanes.py`): the bulk lane (`vi.ingest.bulk`), with the
onboarding loads partners publish there and the packs of beyond-share messages, and
`vi.ingest.admitted`, with the packs of messages within their share. All are handled
like live messages, their commands going on in the queue's lane; a pack's messages
keep the arrivals recorded when they were packed.

A pack whose batch fails is handled again message by message; a message that fails
on its own leaves the pack as a message of its own, to the queue's first delay queue
(or, when it can never succeed, its parked queue), from where the runtime retries and
parks it like any message (`shared.amqp.consuming`). So one bad message never parks
its pack's neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.ingest.handler import IngestHandler
from services.ingest.pack import PACK_TYPE, Inbound, PackedMessage, unpack
from shared.amqp.consuming import Delivery, Failures, PoisonMessage
from shared.lanes import Lane, LiveFirst
from shared.logs import describe_error, get_logger

log = get_logger(__name__)


class PackIngest:
    def __init__(
        self,
        handler: IngestHandler,
        failures: Failures,
        lane: Lane,
        lanes: LiveFirst | None = None,
    ) -> None:
        # Its commands go on in `lane`.
        self._handler = handler
        # The queue's retry and parked queues, for a message that fails alone.
        self._failures = failures
        self._lane = lane
        self._lanes = lanes or LiveFirst()

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        """Each pack as a batch of its own (a pack is as big as a batch already), the
        onboarding messages as one. In the bulk lane live work goes first between
        packs: a batch of packs holds up to a batch of batches."""
        loose: list[Inbound] = []
        first = True
        for delivery in deliveries:
            if _is_pack(delivery):
                if not first and self._lane is Lane.BULK:
                    await self._lanes.after_live()
                await self._handle_pack(_unpacked(delivery))
                first = False
            else:
                loose.append(delivery)
        await self._handle(loose)

    async def acked(self, deliveries: Sequence[Delivery]) -> None:
        """Confirmed acks close the arrivals of onboarding messages. A pack's are
        closed by the first pass, once the originals can no longer be delivered."""
        await self._handler.acked([d for d in deliveries if not _is_pack(d)])

    async def _handle_pack(self, messages: Sequence[PackedMessage]) -> None:
        try:
            await self._handle(messages)
        except Exception as exc:
            log.warning("pack_failed_one_by_one", batch=len(messages), error=describe_error(exc))
            for message in messages:
                # Its batch may have got as far as answering it.
                again = replace(message, seen_before=True)
                try:
                    await self._handler([again])
                except Exception as alone:
                    # Its first attempt failed; from here on it is retried on its own.
                    log.warning("packed_message_failed_on_its_own")
                    await self._failures.pass_on(again, 0, alone)

    async def _handle(self, messages: Sequence[Inbound]) -> None:
        if messages:
            await self._handler(messages)


def _is_pack(delivery: Delivery) -> bool:
    # Only the services' own login can publish as it (the broker checks user_id).
    message = delivery.message
    return message.type == PACK_TYPE and message.user_id == delivery.service_user


def _unpacked(delivery: Delivery) -> list[PackedMessage]:
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
