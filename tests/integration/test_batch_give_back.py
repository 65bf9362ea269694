"""A batch whose handling ends in something the consumer does not otherwise catch (a
cancellation raised from inside a library, during a broker failover) is given back to
the broker: its messages come again, and the queue does not stall with them unacked."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.amqp.consumer import Delivery
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY, MATCHER_QUEUE
from shared.service import Runtime
from tests.conftest import System
from tests.support import eventually, no_consumers, queued_messages


async def test_a_batch_cancelled_from_inside_its_handler_is_given_back_and_handled(
    system: System,
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    bodies = {f"m-{i}".encode() for i in range(40)}
    for body in sorted(bodies):
        await tool.publisher.publish(INTERNAL_EXCHANGE, MATCHER_KEY, body, message_id=body.decode())

    handled: list[bytes] = []
    aborted: list[int] = []

    async def batch(deliveries: Sequence[Delivery]) -> None:
        if not aborted:
            aborted.append(len(deliveries))
            raise asyncio.CancelledError  # as a library's cancelled task surfaces
        handled.extend(d.message.body for d in deliveries)

    async def single(delivery: Delivery) -> None:
        await batch([delivery])

    async def setup(runtime: Runtime) -> None:
        # A prefetch below the message count: stalled, unacked deliveries would hold it.
        runtime.consume(MATCHER_QUEUE, single, batch_handler=batch, prefetch=8)

    consumer = await system.start("matcher", setup=setup)

    async def all_handled() -> bool:
        return set(handled) == bodies

    await eventually(all_handled, timeout=20)
    assert aborted and aborted[0] >= 1
    await system.stop(consumer)
    await asyncio.sleep(0.2)
    assert await queued_messages(tool, MATCHER_QUEUE) == 0
