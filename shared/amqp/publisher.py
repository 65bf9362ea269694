"""Publishing with publisher confirms; an unroutable (returned) message is an error.

aio-pika's defaults are the wrong way round for us (non-persistent messages, returns
ignored), so every publish goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection


class Publisher:
    def __init__(self, connection: AbstractRobustConnection, *, timeout: float = 30.0) -> None:
        self._connection = connection
        self._timeout = timeout
        # Strong references: robust connections only keep channels weakly.
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def start(self) -> None:
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _exchange(self, name: str) -> AbstractExchange:
        if self._channel is None:
            raise RuntimeError("Publisher.start() was not called")
        if name == "":
            return self._channel.default_exchange
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

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
        message = aio_pika.Message(
            body,
            message_id=message_id,
            correlation_id=correlation_id,
            type=message_type,
            headers=dict(headers or {}),
            user_id=user_id,
            content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=datetime.now(UTC),
        )
        await self.publish_message(exchange, routing_key, message)

    async def publish_message(
        self, exchange: str, routing_key: str, message: aio_pika.Message
    ) -> None:
        target = await self._exchange(exchange)
        await target.publish(message, routing_key, mandatory=True, timeout=self._timeout)
