"""The raw consumer (`shared.amqp.compat.raw`) of ingest's first pass, on the real
broker: batches in order, one `multiple` ack each, only after the handler returned;
a failing batch comes again whole and unacked; the broker's confirmation of the ack
before `on_acked`; and a consumer the broker cancelled is consumed again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from shared.amqp.compat.raw import RawConsumer
from shared.amqp.consuming import ConsumerSettings, Delivery
from shared.amqp.topology import INGEST_QUEUE
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from tests.conftest import System
from tests.support import eventually, no_consumers, queue_depth


async def _queue_with(runtime: Runtime, count: int) -> str:
    name = f"test.raw.{uuid.uuid4().hex[:8]}"
    async with runtime.connection.channel() as channel:
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
    for i in range(count):
        await runtime.publisher.publish(
            OutboundMessage("", name, f"body-{i}".encode(), None, message_id=f"m-{i}")
        )
    return name


def _settings(runtime: Runtime, prefetch: int, batch_size: int) -> ConsumerSettings:
    return ConsumerSettings(
        prefetch=prefetch,
        retry_delays_ms=(),
        service_user=runtime.settings.service_broker_user,
        batch_size=batch_size,
    )


async def _delete(runtime: Runtime, queue: str) -> None:
    async with runtime.connection.channel() as channel:
        await channel.queue_delete(queue)


async def test_a_failing_batch_comes_again_whole_and_unacked_then_all_are_acked_once(
    system: System,
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    queue = await _queue_with(tool, 50)
    handed: list[list[Delivery]] = []

    async def failing(deliveries: Sequence[Delivery]) -> None:
        handed.append(list(deliveries))
        for d in deliveries:
            d.binding.arrival_id = d.binding.arrival_id or uuid.uuid4()
        raise RuntimeError("the database went away")

    consumer = RawConsumer(tool.connection, queue, failing, _settings(tool, 100, 20))
    assert not consumer.is_consuming()
    running = asyncio.create_task(consumer.run())
    await eventually(lambda: _true(len(handed) >= 2))
    assert consumer.is_consuming()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    # The same batch again, whole, each delivery with the binding it was given.
    first, again = handed[0], handed[1]
    assert [d.message_id for d in first] == [d.message_id for d in again]
    assert 1 < len(first) <= 20
    assert all(a.binding is f.binding for f, a in zip(first, again, strict=True))
    assert not any(d.seen_before for d in again)  # handed over again, not redelivered
    # Nothing was acked while its batch failed (nor after: the batches are in order).
    await eventually(lambda: _ready_is(tool, queue, 50))

    batches: list[list[str | None]] = []
    seen_before: list[bool] = []
    acked: list[str | None] = []

    async def handle(deliveries: Sequence[Delivery]) -> None:
        batches.append([d.message_id for d in deliveries])
        seen_before.extend(d.seen_before for d in deliveries)

    async def on_acked(deliveries: Sequence[Delivery]) -> None:
        acked.extend(d.message_id for d in deliveries)

    consumer = RawConsumer(
        tool.connection,
        queue,
        handle,
        _settings(tool, 100, 20),
        on_acked=on_acked,
    )
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _true(len(acked) == 50), timeout=15)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # In order, once each, in batches of at most 20, acked (and confirmed) once each.
    assert [m for batch in batches for m in batch] == [f"m-{i}" for i in range(50)]
    assert max(len(b) for b in batches) <= 20
    assert all(seen_before[: len(first)])  # the broker delivered those again
    assert sorted(map(str, acked)) == sorted(f"m-{i}" for i in range(50))
    assert await queue_depth(tool, queue) == (0, 0)  # all acked: nothing came back
    await _delete(tool, queue)


async def test_a_consumer_the_broker_cancelled_consumes_again(system: System) -> None:
    tool = await system.start("tool", setup=no_consumers)
    queue = await _queue_with(tool, 0)
    got: list[str | None] = []
    redeclared: list[bool] = []

    async def handle(deliveries: Sequence[Delivery]) -> None:
        got.extend(d.message_id for d in deliveries)

    async def redeclare() -> None:
        redeclared.append(True)
        async with tool.connection.channel() as channel:
            await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})

    consumer = RawConsumer(
        tool.connection,
        queue,
        handle,
        _settings(tool, 10, 5),
        redeclare=redeclare,
    )
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: _true(consumer.is_consuming()))
        await _delete(tool, queue)  # the broker cancels our consumer
        await eventually(lambda: _true(not consumer.is_consuming()))
        await eventually(lambda: _true(consumer.is_consuming()), timeout=15)
        assert redeclared
        await tool.publisher.publish(
            OutboundMessage("", queue, b"after", None, message_id="after-1")
        )
        await eventually(lambda: _true(got == ["after-1"]))
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    await _delete(tool, queue)


async def _ready_is(runtime: Runtime, queue: str, count: int) -> bool:
    return (await queue_depth(runtime, queue))[0] == count


async def _true(value: bool) -> bool:
    return value


async def test_ingest_is_ready_only_while_its_first_pass_consumes(system: System) -> None:
    ingest = await system.start("ingest")
    await eventually(lambda: _ready(ingest, True), timeout=15)
    await _delete(ingest, INGEST_QUEUE)  # the broker cancels the first pass's consumer
    await eventually(lambda: _ready(ingest, False))
    # It declares the topology again and consumes again.
    await eventually(lambda: _ready(ingest, True), timeout=15)
    assert (await queue_depth(ingest, INGEST_QUEUE))[1] == 1


async def _ready(runtime: Runtime, expected: bool) -> bool:
    checks = await runtime.readiness()
    return checks["first_pass_consuming"] is expected and all(checks.values()) is expected
