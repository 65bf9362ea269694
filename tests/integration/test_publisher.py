"""Messages published together: every one arrives whole and in order, and every
failure (unroutable, refused by the broker, a closed channel) is raised, on the real
RabbitMQ, whether written together or, on an unknown aiormq, one by one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp import compat
from shared.amqp.connection import connect
from shared.amqp.publisher import WRITE_CHUNK, Publisher
from shared.outgoing import OutboundMessage, new_message_id
from tests.support import RegionUnderTest


@pytest.fixture
async def connection(test_region: RegionUnderTest) -> AsyncIterator[AbstractRobustConnection]:
    conn = await connect(test_region.settings.amqp_url, "test-publisher")
    yield conn
    await conn.close()


@pytest.fixture(params=["internals", "public api"])
async def publisher(
    request: pytest.FixtureRequest,
    connection: AbstractRobustConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Publisher]:
    """Every outcome on both paths of `shared.amqp.compat`: messages written together
    (the versions it knows) and one publish call each (any other version)."""
    monkeypatch.setattr(compat, "INTERNALS", request.param == "internals")
    pub = Publisher(connection, timeout=10.0)
    await pub.start()
    yield pub
    await pub.close()


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AsyncIterator[AbstractChannel]:
    async with connection.channel() as ch:
        yield ch


async def declare(channel: AbstractChannel, arguments: dict[str, int | str] | None = None) -> str:
    name = f"pub-{uuid.uuid4().hex[:8]}"
    await channel.declare_queue(name, durable=True, arguments=dict(arguments or {}) or None)
    return name


async def take_all(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    got = []
    q = await channel.get_queue(queue, ensure=False)
    while (message := await q.get(no_ack=True, fail=False)) is not None:
        got.append(message)
    return got


async def test_many_messages_arrive_whole_in_order_across_writes(
    publisher: Publisher, channel: AbstractChannel
) -> None:
    queue = await declare(channel, {"x-queue-type": "quorum"})
    count = WRITE_CHUNK * 2 + 7  # three socket writes
    messages = [
        OutboundMessage(
            "",
            queue,
            f'{{"n": {i}}}'.encode(),
            message_type="probe",
            message_id=f"m-{i}",
            correlation_id=f"c-{i}",
            headers={"x-n": i},
        )
        for i in range(count)
    ]
    await publisher.publish(*messages)
    # Delivery tags stay in step with the broker's: a later single publish is confirmed.
    await publisher.publish(
        OutboundMessage("", queue, b'{"n": "last"}', message_type=None, message_id="m-last")
    )

    got = await take_all(channel, queue)
    assert [m.message_id for m in got] == [f"m-{i}" for i in range(count)] + ["m-last"]
    first = got[0]
    assert first.body == b'{"n": 0}'
    assert first.correlation_id == "c-0"
    assert first.type == "probe"
    assert first.headers is not None and first.headers["x-n"] == 0
    assert first.content_type == "application/json"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.timestamp is not None


async def test_a_copy_keeps_a_missing_timestamp_and_gets_an_id(
    publisher: Publisher, channel: AbstractChannel
) -> None:
    queue = await declare(channel)
    # The broker names a returned message by its id, so every message gets one.
    invented = new_message_id()
    await publisher.publish(
        OutboundMessage(
            "",
            queue,
            b"{}",
            message_type=None,
            message_id=invented,
            timestamp=None,
            content_type=None,
        )
    )
    (got,) = await take_all(channel, queue)
    assert got.timestamp is None
    assert got.content_type is None
    assert got.message_id == invented


async def test_bodies_larger_than_a_frame_arrive_whole(
    publisher: Publisher, channel: AbstractChannel
) -> None:
    queue = await declare(channel)
    big = bytes(range(256)) * 2048  # 512 KiB, several frames at the default frame_max
    await publisher.publish(
        OutboundMessage("", queue, big, message_type=None, message_id="big"),
        OutboundMessage("", queue, b"small", message_type=None, message_id="small"),
    )
    got = await take_all(channel, queue)
    assert [(m.message_id, m.body) for m in got] == [("big", big), ("small", b"small")]


async def test_an_unroutable_message_is_raised_and_its_neighbours_still_arrive(
    publisher: Publisher, channel: AbstractChannel
) -> None:
    queue = await declare(channel)
    with pytest.raises(aiormq.exceptions.PublishError):
        await publisher.publish(
            OutboundMessage("", queue, b"1", message_type=None, message_id="a"),
            OutboundMessage(
                "", f"nowhere-{uuid.uuid4().hex}", b"2", message_type=None, message_id="lost"
            ),
            OutboundMessage("", queue, b"3", message_type=None, message_id="c"),
        )
    await publisher.publish(OutboundMessage("", queue, b"4", message_type=None, message_id="d"))
    assert [m.message_id for m in await take_all(channel, queue)] == ["a", "c", "d"]


async def test_a_message_the_broker_refuses_is_raised(
    publisher: Publisher, channel: AbstractChannel
) -> None:
    # A full queue that refuses publishes makes the broker nack the surplus.
    queue = await declare(channel, {"x-max-length": 1, "x-overflow": "reject-publish"})
    with pytest.raises(aiormq.exceptions.DeliveryError):
        await publisher.publish(
            *[
                OutboundMessage("", queue, str(i).encode(), message_type=None, message_id=f"n-{i}")
                for i in range(3)
            ]
        )
    assert [m.message_id for m in await take_all(channel, queue)] == ["n-0"]
    await publisher.publish(
        OutboundMessage("", queue, b"again", message_type=None, message_id="again")
    )
    assert [m.message_id for m in await take_all(channel, queue)] == ["again"]


async def test_publishing_on_a_closed_publisher_is_raised(publisher: Publisher) -> None:
    await publisher.close()
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await publisher.publish(
            OutboundMessage("", "any", b"{}", message_type=None, message_id="x")
        )


async def test_nothing_to_publish_needs_no_channel(connection: AbstractRobustConnection) -> None:
    # A handler whose batch produced no messages may call it before, or without, start().
    await Publisher(connection).publish()
    with pytest.raises(RuntimeError, match="start"):
        await Publisher(connection).publish(
            OutboundMessage("", "any", b"{}", message_type=None, message_id="x")
        )
