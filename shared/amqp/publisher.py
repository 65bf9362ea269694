"""Publishing with publisher confirms; an unroutable (returned) message is an error.

aio-pika's defaults are the wrong way round for us (non-persistent messages, returns
ignored), so every publish goes through here.

Messages published together (a batch's receipts, an event's notices) go out in one
socket write and are then confirmed together. Published one call each, every message
costs the client a lock, a queue hand-over, a drain and a write, and costs the broker
a read of its own; written together, both the client and the broker need about a
quarter to a fifth of the CPU per message (see docs/performance.md). That needs
aiormq's internals, so it lives in `shared.amqp.compat`, which falls back to one
publish call per message on an aiormq version it does not know.
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
from pamqp import commands as spec

from shared.amqp import compat
from shared.amqp.compat import WRITE_CHUNK

__all__ = ["WRITE_CHUNK", "Outgoing", "Publisher"]


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

    def message_id_or_new(self) -> str:
        """The message_id, or a new one: a return names its message by id only."""
        return self.message_id or uuid.uuid4().hex

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
        async with asyncio.timeout(self._timeout):
            outcomes = await compat.publish_confirmed(self._channel, messages)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
