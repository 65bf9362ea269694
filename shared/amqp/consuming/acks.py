"""Acking handled deliveries: one `multiple` ack per channel where it can, and a
confirmation of the acks for whoever must know that a delivery cannot come again.

After the ack, a synchronous call on the same channel (`basic.qos` with the prefetch
it has) returns only once the broker processed every frame before it, the ack
included: then `on_acked` hears of the deliveries. Deliveries handed to a retry or
parked queue are not reported: the message lives on there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from shared.amqp.consuming.delivery import Delivery
from shared.logs import describe_error, get_logger

log = get_logger(__name__)

AckedHook = Callable[[Sequence[Delivery]], Awaitable[None]]


class Acks:
    def __init__(self, prefetch: int, on_acked: AckedHook | None = None) -> None:
        self._prefetch = prefetch
        self._on_acked = on_acked
        # (channel key, delivery tag) of every delivery received and not yet settled.
        self._unsettled: set[tuple[int, int]] = set()

    def received(self, delivery: Delivery) -> None:
        tag = delivery.message.delivery_tag
        if tag is not None:
            self._unsettled.add((delivery.channel_key, tag))

    def done_with(self, delivery: Delivery) -> None:
        """The delivery is settled, or its handling is over."""
        tag = delivery.message.delivery_tag
        if tag is not None:
            self._unsettled.discard((delivery.channel_key, tag))

    async def ack_all(self, deliveries: Sequence[Delivery]) -> None:
        """Ack handled deliveries (`ack`), then report each channel's group once its
        acks are confirmed."""
        for group in await self.ack(deliveries):
            await self.report_acked(group)

    async def ack(self, deliveries: Sequence[Delivery]) -> list[list[Delivery]]:
        """Ack handled deliveries, channel by channel (after a reconnect a batch can
        hold deliveries of the old channel and of the new one, whose tags both count
        from 1): with one `multiple` ack when they are every unsettled delivery of that
        channel up to the highest (the usual case), else one ack each. (One `multiple`
        ack on the old channel once left the new channel's deliveries of the batch
        unacked for good: a stalled queue with a healthy-looking consumer.) The groups,
        one per channel, whose acks were all sent."""
        sent = []
        for channel_key, group in by_channel(deliveries).items():
            tags = {d.message.delivery_tag for d in group if d.message.delivery_tag is not None}
            unsettled = {tag for key, tag in self._unsettled if key == channel_key}
            top = multiple_ack_tag(tags, unsettled) if len(tags) == len(group) else None
            self._unsettled.difference_update((channel_key, tag) for tag in tags)
            if top is not None:
                last = next(d for d in group if d.message.delivery_tag == top)
                settled = [await settle(last.message.ack(multiple=True), "ack")]
            else:
                settled = await asyncio.gather(*(settle(d.message.ack(), "ack") for d in group))
            if all(settled):
                sent.append(group)
        return sent

    async def report_acked(self, deliveries: Sequence[Delivery]) -> None:
        """Tell `on_acked` once the broker confirmed the acks (see the module doc).
        Unconfirmed (the channel went away): say nothing, the delivery may come back."""
        if self._on_acked is None or not deliveries:
            return
        try:
            await deliveries[-1].message.channel.basic_qos(prefetch_count=self._prefetch)
        except Exception as exc:
            log.warning("ack_unconfirmed", error=describe_error(exc))
            return
        try:
            await self._on_acked(deliveries)
        except Exception as exc:
            log.warning("after_ack_failed", error=describe_error(exc))


def by_channel(deliveries: Sequence[Delivery]) -> dict[int, list[Delivery]]:
    """The deliveries grouped by the channel they came on, in order."""
    groups: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.channel_key, []).append(delivery)
    return groups


def multiple_ack_tag(batch: set[int], unsettled: set[int]) -> int | None:
    """The tag that acks exactly `batch` with `multiple`, if there is one: the batch's
    highest, when no other unsettled delivery lies below it."""
    if not batch:
        return None
    top = max(batch)
    if any(tag <= top and tag not in batch for tag in unsettled):
        return None
    return top


async def settle(action: Awaitable[None], what: str) -> bool:
    """Ack or nack; False when it could not be sent. When the connection is gone (a
    broker restart) the broker gives the message to a consumer again; the inbox makes
    that harmless, so this is a warning, not an error escaping into the client
    library's log as a traceback."""
    try:
        await action
    except Exception as exc:
        log.warning("settle_failed_redelivery_expected", action=what, error=describe_error(exc))
        return False
    return True
