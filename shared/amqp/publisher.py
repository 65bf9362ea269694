"""Publishing with publisher confirms; an unroutable (returned) message is an error.

aio-pika's defaults are the wrong way round for us (non-persistent messages, returns
ignored), so every publish goes through here.

Messages published together (a batch's receipts, an event's notices) go out in one
socket write and are then confirmed together. Published one call each, every message
costs the client a lock, a queue hand-over, a drain and a write, and costs the broker
a read of its own; written together, both the client and the broker need about a
quarter to a fifth of the CPU per message (see docs/performance.md). aiormq has no
public call for this, so :func:`_write_together` does what its ``basic_publish``
does, for many messages under one lock; the aiormq version is pinned for it and
``tests/integration/test_publisher.py`` checks every outcome (confirm, return, nack,
closed channel, bodies larger than a frame).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader

from shared.envelopes import chunked

# Messages written per socket write: a bound on one frame buffer and one lock hold.
WRITE_CHUNK = 128


@dataclass(frozen=True)
class Outgoing:
    """One message to publish, persistent and mandatory."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None = None
    message_type: str | None = None
    headers: Mapping[str, Any] | None = None
    user_id: str | None = None
    content_type: str | None = "application/json"
    content_encoding: str | None = None
    app_id: str | None = None
    # When it was made; a copy of a received message keeps the original's (or none).
    timestamp: datetime | None = field(default_factory=lambda: datetime.now(UTC))

    def properties(self, message_id: str) -> spec.Basic.Properties:
        return spec.Basic.Properties(
            app_id=self.app_id,
            content_encoding=self.content_encoding,
            content_type=self.content_type,
            correlation_id=self.correlation_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
            headers=dict(self.headers or {}),
            message_id=message_id,
            message_type=self.message_type,
            timestamp=self.timestamp,
            user_id=self.user_id,
        )


class Publisher:
    def __init__(self, connection: AbstractRobustConnection, *, timeout: float = 30.0) -> None:
        self._connection = connection
        self._timeout = timeout
        # A strong reference: robust connections only keep channels weakly.
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None,
        correlation_id: str | None = None,
        message_type: str | None = None,
        headers: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        content_type: str | None = "application/json",
    ) -> None:
        await self.publish_many(
            [
                Outgoing(
                    exchange,
                    routing_key,
                    body,
                    message_id=message_id,
                    correlation_id=correlation_id,
                    message_type=message_type,
                    headers=headers,
                    user_id=user_id,
                    content_type=content_type,
                )
            ]
        )

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish all, written together, and return once the broker confirmed every
        one. Raises if any was returned (unroutable), refused, or not confirmed in
        time; the others may have been published, so callers publish again with the
        same message ids and receivers drop the duplicates."""
        if not messages:
            return
        if self._channel is None:
            raise RuntimeError("Publisher.start() was not called")
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{self._channel!r} closed")
        channel = await self._channel.get_underlay_channel()
        assert isinstance(channel, aiormq.Channel)
        async with asyncio.timeout(self._timeout):
            confirmations: list[asyncio.Future[Any]] = []
            for chunk in chunked(messages, WRITE_CHUNK):
                confirmations += await _write_together(channel, chunk)
            outcomes = await asyncio.gather(*confirmations, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


async def _write_together(
    channel: aiormq.Channel, messages: Sequence[Outgoing]
) -> list[asyncio.Future[Any]]:
    """Write the messages' frames in one piece and return their confirmation futures.

    What aiormq's ``basic_publish`` does for one message: under the channel's lock,
    take the next delivery tags, register a confirmation per tag (and the message_id
    a return names), queue the frames, wait until they are written. A failure before
    the frames were queued gives the tags back, so the broker's numbering and ours
    stay the same."""
    frames: list[Any] = []
    confirmations: list[asyncio.Future[Any]] = []
    async with channel._raise_on_channel_close(), channel.lock:
        first_tag = channel.delivery_tag + 1
        try:
            for offset, message in enumerate(messages):
                tag = first_tag + offset
                # A return names its message by id only; like aiormq, give one to a
                # message that has none.
                message_id = message.message_id or uuid.uuid4().hex
                properties = message.properties(message_id)
                confirmation = channel.create_future()
                channel.confirmations[tag] = confirmation
                channel.message_id_delivery_tag[message_id] = tag
                confirmation.add_done_callback(_forget_message_id(channel, message_id, tag))
                confirmations.append(confirmation)
                frames.append(
                    spec.Basic.Publish(
                        exchange=message.exchange,
                        routing_key=message.routing_key,
                        mandatory=True,
                    )
                )
                frames.append(ContentHeader(properties=properties, body_size=len(message.body)))
                frames.extend(channel._split_body(message.body))
            channel.delivery_tag = first_tag + len(messages) - 1
            drained = channel.create_future()
            payload = ChannelFrame.marshall(
                frames=frames, channel_number=channel.number, drain_future=drained
            )
            await channel.write_queue.put(payload)
        except BaseException:
            # Nothing reached the broker: give the tags back.
            channel.delivery_tag = first_tag - 1
            for offset, confirmation in enumerate(confirmations):
                channel.confirmations.pop(first_tag + offset, None)
                confirmation.cancel()
            raise
        await drained
    return confirmations


def _forget_message_id(channel: aiormq.Channel, message_id: str, tag: int) -> Any:
    def forget(_: asyncio.Future[Any]) -> None:
        if channel.message_id_delivery_tag.get(message_id) == tag:
            channel.message_id_delivery_tag.pop(message_id)

    return forget
