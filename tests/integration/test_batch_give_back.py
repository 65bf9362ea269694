"""A batch whose handling ends in something the consumer does not otherwise catch (a
cancellation raised from inside a library, during a broker failover) is given back to
the broker: its messages come again, and the queue does not stall with them unacked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.amqp.consuming import DELIVERIES, Delivery
from shared.amqp.consuming.acks import Acks
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY, MATCHER_QUEUE
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from tests.conftest import System
from tests.support import eventually, no_consumers, queued_messages


async def test_a_batch_cancelled_from_inside_its_handler_is_given_back_and_handled(
    system: System,
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    bodies = {f"m-{i}".encode() for i in range(40)}
    for body in sorted(bodies):
        await tool.publisher.publish(
            OutboundMessage(
                INTERNAL_EXCHANGE, MATCHER_KEY, body, message_type=None, message_id=body.decode()
            )
        )

    handled: list[bytes] = []
    aborted: list[int] = []

    async def batch(deliveries: Sequence[Delivery]) -> None:
        if not aborted:
            aborted.append(len(deliveries))
            raise asyncio.CancelledError  # as a library's cancelled task surfaces
        handled.extend(d.message.body for d in deliveries)

    async def setup(runtime: Runtime) -> None:
        # A prefetch below the message count: stalled, unacked deliveries would hold it.
        runtime.consume(MATCHER_QUEUE, DELIVERIES, batch, prefetch=8)

    consumer = await system.start("matcher", setup=setup)

    async def all_handled() -> bool:
        return set(handled) == bodies

    await eventually(all_handled, timeout=20)
    assert aborted and aborted[0] >= 1
    await system.stop(consumer)
    await asyncio.sleep(0.2)
    assert await queued_messages(tool, MATCHER_QUEUE) == 0


async def test_a_batch_spanning_a_reconnect_acks_the_new_channels_deliveries(
    system: System,
) -> None:
    """After a reconnect, deliveries of the old channel still waiting for a batch can
    share one with deliveries of the new channel; delivery tags count per channel. The
    batch's acks go channel by channel: the new channel's deliveries are acked even
    though the old channel is gone (one `multiple` ack on the old channel's highest
    tag once left them unacked for good, and the e-mail queue stalled)."""
    tool = await system.start("tool", setup=no_consumers)
    for number in range(6):
        await tool.publisher.publish(
            OutboundMessage(
                INTERNAL_EXCHANGE, MATCHER_KEY, b"{}", message_type=None, message_id=f"m-{number}"
            )
        )

    acks = Acks(prefetch=8)
    old, new = await tool.connection.channel(), await tool.connection.channel()
    old_queue = await old.get_queue(MATCHER_QUEUE, ensure=False)
    new_queue = await new.get_queue(MATCHER_QUEUE, ensure=False)
    taken_on_old = [await old_queue.get(no_ack=False) for _ in range(4)]
    for message in taken_on_old[:2]:
        await message.ack()
    waiting_from_old = taken_on_old[2:]  # tags 3 and 4 of the old channel
    taken_on_new = [await new_queue.get(no_ack=False) for _ in range(2)]  # tags 1 and 2
    assert [m.delivery_tag for m in waiting_from_old + taken_on_new] == [3, 4, 1, 2]
    batch = [
        Delivery(m, "x", channel_key=id(channel))
        for channel, messages in ((old, waiting_from_old), (new, taken_on_new))
        for m in messages
    ]
    for delivery in batch:
        acks.received(delivery)
    await old.close()  # the old channel's connection is gone

    await acks.ack_all(batch)

    await new.close()  # whatever it still held unacked goes back to the queue
    # Only the old channel's two come back: the new channel's two were acked.
    assert await queued_messages(tool, MATCHER_QUEUE) == 2
