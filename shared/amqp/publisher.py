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

import aiormq
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from shared.amqp import compat
from shared.amqp.compat import WRITE_CHUNK
from shared.outgoing import OutboundMessage

__all__ = ["WRITE_CHUNK", "Publisher"]


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

    async def publish(self, *messages: OutboundMessage) -> None:
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
