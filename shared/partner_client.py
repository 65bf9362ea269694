"""A minimal partner-side client: what a partner's system does to talk to the index.

It logs in with the partner's own broker login, publishes with `user_id` set to that
login and publisher confirms on, and reads the partner's mailbox. The demo, the
benchmarks and the tests use it; partners get the standalone
`examples/partner_client.py`, which needs nothing of this project.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import AMQPChannelError, ChannelInvalidStateError

from shared.amqp import compat
from shared.amqp.connection import connect
from shared.amqp.topology import INBOUND_EXCHANGE, partner_queue
from shared.backends import UNAVAILABLE_ERRORS

# A publish that meets a lost connection is sent again until this long has passed.
PUBLISH_GIVE_UP_SECONDS = 60.0
_CONNECTION_LOST: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, ChannelInvalidStateError)


@dataclass
class Received:
    body: dict[str, Any]
    message_id: str | None
    correlation_id: str | None

    @property
    def type(self) -> str:
        return str(self.body.get("type", ""))


class PartnerClient:
    def __init__(
        self,
        url: str,
        partner_id: str,
        broker_user: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`url` amqps://…?auth=external with an `ssl_context` holding the partner's
        certificate logs in by certificate (its common name is `broker_user`). Like
        VI_AMQP_URL, `url` may list several nodes of a cluster, comma-separated: the
        client connects to the first that answers and moves on when its node fails."""
        self.url = url
        self.ssl_context = ssl_context
        self.partner_id = partner_id
        self.broker_user = broker_user
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._mailbox: asyncio.Queue[Received] = asyncio.Queue()

    async def start(self, *, read_mailbox: bool = True) -> None:
        self._connection = await connect(
            self.url, f"partner-{self.partner_id}", ssl_context=self.ssl_context
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        if read_mailbox:
            # ensure=True (a passive declare, which needs no configure permission): only
            # a queue the robust channel declared is re-consumed after a reconnect; one
            # from ensure=False silently stops delivering when the broker restarts.
            queue = await self._channel.get_queue(partner_queue(self.partner_id), ensure=True)
            await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # A real partner would store the message (dropping a message_id it has seen)
        # before acking; here the in-memory queue is the store.
        await self._mailbox.put(
            Received(json.loads(message.body), message.message_id, message.correlation_id)
        )
        await message.ack()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def send(
        self,
        body: dict[str, Any] | bytes,
        *,
        message_id: str | None = None,
        routing_key: str | None = None,
        user_id: str | None = None,
        set_user_id: bool = True,
        headers: dict[str, Any] | None = None,
    ) -> str | None:
        """Publish one message; returns its message_id. A fresh id is made unless one
        is given (pass message_id="" to send none at all). `headers`: AMQP headers,
        such as the portal's x-vi-on-behalf-of and x-vi-actor."""
        assert self._channel is not None, "call start() first"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        key = (
            routing_key
            if routing_key is not None
            else (str(body.get("type", "")) if isinstance(body, dict) else "")
        )
        mid = str(uuid.uuid4()) if message_id is None else (message_id or None)
        user_id = (user_id or self.broker_user) if set_user_id else None
        deadline = asyncio.get_running_loop().time() + PUBLISH_GIVE_UP_SECONDS
        while True:
            try:
                await self._publish(raw, key, mid, user_id, headers)
                return mid
            except _CONNECTION_LOST as exc:
                # A refusal by the broker (a user_id not the login's own, no write
                # permission) closes the channel with a reason: sending again cannot
                # help. Anything else means its node went away: publish again, with the
                # same message_id, once the connection is back (on this node or the next).
                if isinstance(exc, AMQPChannelError):
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                assert self._connection is not None
                await asyncio.sleep(0.2)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._connection.connected.wait(), 5)

    async def _publish(
        self,
        raw: bytes,
        key: str,
        mid: str | None,
        user_id: str | None,
        headers: dict[str, Any] | None,
    ) -> None:
        assert self._channel is not None
        if mid is None:
            underlay = await self._channel.get_underlay_channel()
            await underlay.basic_publish(
                raw,
                exchange=INBOUND_EXCHANGE,
                routing_key=key,
                properties=compat.WithoutMessageId(
                    user_id=user_id,
                    headers=headers,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
                ),
            )
            return
        exchange = await self._channel.get_exchange(INBOUND_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                raw,
                message_id=mid,
                user_id=user_id,
                headers=headers,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=key,
        )

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self._mailbox.get(), timeout)

    async def collect(self, count: int, timeout: float = 15.0) -> list[Received]:
        return [await self.next(timeout) for _ in range(count)]

    async def quiet(self, seconds: float = 0.5) -> list[Received]:
        """Whatever arrives within `seconds` (often expected to be nothing)."""
        extra = []
        try:
            while True:
                extra.append(await asyncio.wait_for(self._mailbox.get(), seconds))
        except TimeoutError:
            return extra

    async def receipt_for(self, message_id: str | None, timeout: float = 10.0) -> Received:
        """The next receipt answering `message_id` (other messages are skipped)."""
        while True:
            got = await self.next(timeout)
            if got.type == "receipt" and got.body.get("in_reply_to") == message_id:
                return got
