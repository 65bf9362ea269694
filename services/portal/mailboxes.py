"""The portal on the bus as a receiver: it reads the `partner.<id>` queue of every
partner on channel "portal", and its own `partner.portal`, into its read model.

A message is acked only after it is applied and committed; the read model drops a
message_id it has seen (outbound ids are stable), so a redelivery is harmless. A
failure (the database away) gives the message back after a pause.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from typing import Any

import asyncpg
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from services.portal import readmodel
from shared.amqp.topology import partner_queue
from shared.logs import describe_error, get_logger, message_context

log = get_logger(__name__)

RETRY_PAUSE_SECONDS = 1.0
PREFETCH = 16


class Mailboxes:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        pool: asyncpg.Pool[Any],
        *,
        on_applied: Callable[[str, str], None] = lambda partner_id, kind: None,
    ) -> None:
        self._connection = connection
        self._pool = pool
        self._on_applied = on_applied
        # Strong references: robust connections keep channels only weakly.
        self._channel: AbstractChannel | None = None
        self._queues: dict[str, AbstractQueue] = {}

    @property
    def reading(self) -> list[str]:
        return sorted(self._queues)

    async def read(self, mailbox_ids: list[str]) -> None:
        """Consume every mailbox in `mailbox_ids` not read yet (new portal partners are
        picked up when the region changes). A mailbox the broker does not have yet is
        tried again at the next call."""
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel()
            await self._channel.set_qos(prefetch_count=PREFETCH)
            self._queues.clear()
        for mailbox in mailbox_ids:
            if mailbox in self._queues:
                continue
            try:
                # ensure=True: a passive declare (the portal may declare nothing), and
                # the robust channel consumes it again after a reconnect.
                queue = await self._channel.get_queue(partner_queue(mailbox), ensure=True)
            except Exception as exc:
                log.warning("portal_mailbox_missing", mailbox=mailbox, error=describe_error(exc))
                self._channel = None
                return
            await queue.consume(self._handler(mailbox))
            self._queues[mailbox] = queue
            log.info("portal_mailbox_reading", mailbox=mailbox)

    def _handler(self, mailbox: str) -> Callable[[AbstractIncomingMessage], Any]:
        async def handle(message: AbstractIncomingMessage) -> None:
            message_id = message.message_id or hashlib.sha256(message.body).hexdigest()
            with message_context(message_id=message_id, correlation_id=message.correlation_id):
                try:
                    body = json.loads(message.body)
                    if not isinstance(body, dict):
                        raise ValueError("not a JSON object")
                except ValueError:
                    # Kept for the record rather than lost (the index sends only JSON).
                    body = {"type": "unreadable", "raw": message.body.decode("utf-8", "replace")}
                try:
                    async with self._pool.acquire() as conn, conn.transaction():
                        await readmodel.take_in(
                            conn, mailbox, message_id, message.correlation_id, body
                        )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("portal_mailbox_retry", mailbox=mailbox, error=describe_error(exc))
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                    await message.nack(requeue=True)
                    return
                await message.ack()
                self._on_applied(mailbox, str(body.get("type", "")))

        return handle

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
