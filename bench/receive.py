"""How fast one process can merely receive and ack a queue's messages, by the way it
consumes: what ingest's first pass costs before it does any work of its own
(docs/performance.md, "Receiving cheaply").

    .venv/bin/python -m bench.receive [--messages 20000] [--prefetch 256] [--every 64]

Each way drains the same number of queued partner-like meldingen (a melding body,
`user_id` and `message_id` set, published persistent to a quorum queue) and prints the
process's CPU per message, the rate, the broker's CPU per message, and the ratio of
its rate to the runtime consumer's:

* `runtime`: the services' consumer (`shared.amqp.consuming.Consumer`) with a batch
  handler that does nothing, as ingest's earlier first pass consumed;
* `aio-pika`: aio-pika's `queue.consume`, one ack per message;
* `raw`: aiormq's `basic_consume` (no aio-pika message objects), one ack per message;
* `raw-multiple`: the same, one `multiple` ack every `--every` messages;
* `raw-consumer`: the raw consumer of ingest's first pass
  (`shared.amqp.compat.raw.RawConsumer`, batches of `--every`) with a handler that
  does nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiormq
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.abc import DeliveredMessage

from bench.procs import backend_cpu
from shared.amqp.compat.raw import RawConsumer, Received
from shared.amqp.connection import connect
from shared.amqp.consuming import DELIVERIES, Consumer, ConsumerSettings, Delivery
from shared.amqp.publisher import Publisher
from shared.envelopes import chunked
from shared.outgoing import OutboundMessage

AMQP_URL = os.environ.get("VI_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
USER = "guest"
WAYS = ("runtime", "aio-pika", "raw", "raw-multiple", "raw-consumer")

Drain = Callable[[AbstractRobustConnection, str, int, asyncio.Event], Awaitable[None]]


def _body() -> bytes:
    from bench.lanes import load_meldingen

    return load_meldingen(1, "rcv", "2026-12-03T00:00:00+00:00")[0].body


async def _fill(connection: AbstractRobustConnection, queue: str, count: int) -> None:
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
    await channel.close()
    publisher = Publisher(connection)
    await publisher.start()
    body = _body()
    for part in chunked(range(count), 256):
        await publisher.publish(
            *[
                OutboundMessage("", queue, body, None, message_id=f"rcv-{k}", user_id=USER)
                for k in part
            ]
        )


def _settings(prefetch: int, every: int) -> ConsumerSettings:
    return ConsumerSettings(
        prefetch=prefetch, retry_delays_ms=(), service_user=USER, batch_size=every
    )


class Counter:
    def __init__(self, total: int, done: asyncio.Event) -> None:
        self.left = total
        self._done = done

    def add(self, count: int) -> None:
        self.left -= count
        if self.left <= 0:
            self._done.set()


async def _runtime(
    connection: AbstractRobustConnection, queue: str, prefetch: int, every: int, count: Counter
) -> Callable[[], Awaitable[None]]:
    publisher = Publisher(connection)
    await publisher.start()

    async def batch(deliveries: Sequence[Delivery]) -> None:
        count.add(len(deliveries))

    consumer = Consumer(connection, publisher, queue, DELIVERIES, batch, _settings(prefetch, every))
    await consumer.start()
    return lambda: consumer.stop(drain_timeout=5)


async def _aio_pika(
    connection: AbstractRobustConnection, queue: str, prefetch: int, every: int, count: Counter
) -> Callable[[], Awaitable[None]]:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    declared = await channel.get_queue(queue, ensure=False)

    async def on_message(message: AbstractIncomingMessage) -> None:
        await message.ack()
        count.add(1)

    await declared.consume(on_message)
    return channel.close


async def _raw(
    connection: AbstractRobustConnection,
    queue: str,
    prefetch: int,
    every: int,
    count: Counter,
    *,
    multiple: bool,
) -> Callable[[], Awaitable[None]]:
    channel = await connection.channel()
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    await underlay.basic_qos(prefetch_count=prefetch)
    held: list[int] = []

    async def on_message(message: DeliveredMessage) -> None:
        tag = Received.of(message).delivery_tag
        if not multiple:
            await underlay.basic_ack(tag)
            count.add(1)
            return
        held.append(tag)
        if len(held) >= every or len(held) >= count.left:
            top, settled = max(held), len(held)
            held.clear()
            await underlay.basic_ack(top, multiple=True)
            count.add(settled)

    await underlay.basic_consume(queue, on_message, no_ack=False)
    return channel.close


async def _raw_consumer(
    connection: AbstractRobustConnection, queue: str, prefetch: int, every: int, count: Counter
) -> Callable[[], Awaitable[None]]:
    async def batch(deliveries: Sequence[Delivery]) -> None:
        count.add(len(deliveries))

    consumer = RawConsumer(connection, queue, batch, _settings(prefetch, every))
    task = asyncio.create_task(consumer.run())

    async def stop() -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return stop


async def measure(way: str, messages: int, prefetch: int, every: int) -> dict[str, Any]:
    queue = f"bench.receive.{uuid.uuid4().hex[:8]}"
    connection = await connect(AMQP_URL, f"bench-receive-{way}")
    try:
        await _fill(connection, queue, messages)
        await asyncio.sleep(1.0)  # let the queue settle before the clock starts
        done = asyncio.Event()
        count = Counter(messages, done)
        broker_before = sum(cpu for _, cpu in backend_cpu().values() if _ == "rabbitmq")
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        if way == "runtime":
            stop = await _runtime(connection, queue, prefetch, every, count)
        elif way == "raw-consumer":
            stop = await _raw_consumer(connection, queue, prefetch, every, count)
        elif way == "aio-pika":
            stop = await _aio_pika(connection, queue, prefetch, every, count)
        else:
            stop = await _raw(
                connection, queue, prefetch, every, count, multiple=way == "raw-multiple"
            )
        await asyncio.wait_for(done.wait(), timeout=600)
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        broker = sum(cpu for _, cpu in backend_cpu().values() if _ == "rabbitmq") - broker_before
        await stop()
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.close()
    finally:
        await connection.close()
    return {
        "way": way,
        "messages": messages,
        "seconds": round(wall, 2),
        "per_second": round(messages / wall),
        "client_cpu_us_per_message": round(cpu / messages * 1e6, 1),
        "broker_cpu_us_per_message": round(broker / messages * 1e6, 1),
    }


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receive", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--every", type=int, default=64, help="messages per multiple ack")
    parser.add_argument("--ways", default=",".join(WAYS))
    args = parser.parse_args(argv)
    results = []
    for way in args.ways.split(","):
        result = await measure(way, args.messages, args.prefetch, args.every)
        results.append(result)
        print(json.dumps(result), flush=True)
    base = next((r for r in results if r["way"] == "runtime"), results[0])
    print(
        f"{'way':<14}{'msg/s':>9}{'client µs/msg':>15}{'broker µs/msg':>15}{'× ' + base['way']:>12}"
    )
    for r in results:
        ratio = r["per_second"] / base["per_second"]
        print(
            f"{r['way']:<14}{r['per_second']:>9}{r['client_cpu_us_per_message']:>15}"
            f"{r['broker_cpu_us_per_message']:>15}{ratio:>12.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
