"""A partner's system as the run plays it: its own broker login, publisher confirms,
its mailbox read and every message in it recorded.

What a real partner does when the broker goes away: it reconnects, and whatever it
published that was not confirmed it publishes again *with the same message_id* (the
index then answers `duplicate` if the first copy did arrive, and does nothing twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection
from aiormq import spec

from shared.amqp import compat
from shared.amqp.connection import connect
from shared.amqp.topology import INBOUND_EXCHANGE, partner_queue

PERSISTENT = aio_pika.DeliveryMode.PERSISTENT.value
FINAL = frozenset({"accepted", "rejected"})


@dataclass(frozen=True)
class Got:
    """One message from the partner's mailbox."""

    message_id: str | None
    type: str
    body: dict[str, Any]
    correlation_id: str | None
    redelivered: bool
    at: float

    @property
    def in_reply_to(self) -> str | None:
        value = self.body.get("in_reply_to")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str:
        return str(self.body.get("status", ""))

    @property
    def codes(self) -> list[str]:
        return [str(e.get("code")) for e in self.body.get("errors") or [] if isinstance(e, dict)]


@dataclass
class SendStats:
    published: int = 0  # confirmed publishes, re-sends included
    resends: int = 0  # publishes repeated because the first was not confirmed
    errors: dict[str, int] = field(default_factory=dict)


class Partner:
    def __init__(self, partner_id: str, broker_user: str, url: str, *, prefetch: int = 400) -> None:
        self.id = partner_id
        self.broker_user = broker_user
        self.url = url
        self._prefetch = prefetch
        self.connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._consume_channel: AbstractRobustChannel | None = None
        self.received: list[Got] = []
        self.receipts: dict[str | None, list[Got]] = defaultdict(list)
        self._final: dict[str, asyncio.Future[Got]] = {}
        self.stats = SendStats()
        self.reconnects = 0

    async def start(self) -> None:
        compat.install_wire()  # lets us put a Latin-1 message_id on the wire, as some clients do
        # Every node of a cluster, like the services (a partner's own client would
        # have a list or a load balancer).
        self.connection = await connect(self.url, f"chaos-partner-{self.id}")
        self.connection.reconnect_callbacks.add(self._on_reconnect)
        self._channel = await self.connection.channel(publisher_confirms=True)
        self._consume_channel = await self.connection.channel()
        await self._consume_channel.set_qos(prefetch_count=self._prefetch)
        # ensure=True: only a declared (passively) queue's consumer is restored after
        # a reconnect.
        queue = await self._consume_channel.get_queue(partner_queue(self.id), ensure=True)
        await queue.consume(self._on_message)

    def _on_reconnect(self, *_: Any) -> None:
        self.reconnects += 1

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            body = json.loads(message.body)
        except ValueError:
            body = {"type": "<not json>", "raw": message.body.decode(errors="replace")}
        got = Got(
            message_id=message.message_id,
            type=str(body.get("type", "")) if isinstance(body, dict) else "",
            body=body if isinstance(body, dict) else {"value": body},
            correlation_id=message.correlation_id,
            redelivered=bool(message.redelivered),
            at=time.monotonic(),
        )
        self.received.append(got)
        if got.type == "receipt":
            self.receipts[got.in_reply_to].append(got)
            if got.status in FINAL and got.in_reply_to is not None:
                waiter = self._final.get(got.in_reply_to)
                if waiter is not None and not waiter.done():
                    waiter.set_result(got)
        await message.ack()

    def final_receipt(self, message_id: str) -> Got | None:
        for got in self.receipts.get(message_id, ()):
            if got.status in FINAL:
                return got
        return None

    async def wait_receipt(self, message_id: str, timeout: float) -> Got | None:
        """The accepted/rejected receipt answering `message_id` (None after timeout)."""
        found = self.final_receipt(message_id)
        if found is not None:
            return found
        waiter = self._final.get(message_id)
        if waiter is None:
            waiter = self._final[message_id] = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return None
        finally:
            if waiter.done():
                self._final.pop(message_id, None)

    async def send(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None,
        user_id: str | None = "",
        give_up_after: float = 600.0,
    ) -> None:
        """Publish until the broker confirms it; a re-send keeps the message_id.

        `user_id=""` (the default) sends the partner's own login; None sends none.
        """
        assert self.connection is not None and self._channel is not None, "start() first"
        uid = self.broker_user if user_id == "" else user_id
        if message_id is None:
            properties: spec.Basic.Properties = compat.WithoutMessageId(
                user_id=uid, content_type="application/json", delivery_mode=PERSISTENT
            )
        else:
            properties = spec.Basic.Properties(
                message_id=message_id,
                user_id=uid,
                content_type="application/json",
                delivery_mode=PERSISTENT,
            )
        deadline = time.monotonic() + give_up_after
        attempt = 0
        while True:
            attempt += 1
            try:
                underlay = await asyncio.wait_for(self._channel.get_underlay_channel(), 10)
                confirmation = await underlay.basic_publish(
                    body,
                    exchange=INBOUND_EXCHANGE,
                    routing_key=routing_key,
                    properties=properties,
                    timeout=30,
                )
                if isinstance(confirmation, spec.Basic.Ack):
                    self.stats.published += 1
                    if attempt > 1:
                        self.stats.resends += 1
                    return
                self._count_error(f"not acked: {type(confirmation).__name__}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._count_error(type(exc).__name__)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.id}: could not publish {message_id!r}")
            # Not confirmed: wait for the connection, then send it again.
            await asyncio.sleep(min(0.2 * attempt, 2.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connection.connected.wait(), 5)

    def _count_error(self, name: str) -> None:
        self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
