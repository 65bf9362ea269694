"""The portal on the bus as a receiver: it reads the `partner.<id>` queue of every
partner on channel "portal", and its own `partner.portal`, into its read model.

A message is acked only after it is applied and committed; the read model drops a
message_id it has seen (outbound ids are stable), so a redelivery is harmless. When
the database is away the message goes back after a pause; one the read model cannot
apply is kept as it came (in `portal_notice`) and logged, never lost or looped.
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

from services.portal import metrics, updates
from shared.amqp.topology import partner_queue
from shared.db.pool import TRANSIENT_DB_ERRORS
from shared.logs import describe_error, get_logger, message_context

log = get_logger(__name__)

RETRY_PAUSE_SECONDS = 1.0
PREFETCH = 16


class Mailboxes:
    def __init__(self, connection: AbstractRobustConnection, pool: asyncpg.Pool[Any]) -> None:
        self._connection = connection
        self._pool = pool
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
                kind = str(body.get("type", ""))
                try:
                    async with self._pool.acquire() as conn, conn.transaction():
                        fresh = await updates.take_in(
                            conn, mailbox, message_id, message.correlation_id, body
                        )
                    outcome = "applied" if fresh else "seen"
                except asyncio.CancelledError:
                    raise
                except TRANSIENT_DB_ERRORS as exc:
                    await self._give_back(message, mailbox, exc)
                    return
                except Exception as exc:
                    # Not one the read model can apply (the index sends none such):
                    # kept as it came, so nothing is lost, and the mailbox goes on.
                    log.error(
                        "portal_mailbox_unapplied",
                        mailbox=mailbox,
                        type=kind,
                        error=describe_error(exc),
                    )
                    try:
                        async with self._pool.acquire() as conn:
                            await updates.keep(conn, mailbox, message_id, body)
                    except Exception as keep_error:
                        await self._give_back(message, mailbox, keep_error)
                        return
                    outcome = "kept"
                await message.ack()
                metrics.MAILBOX.labels(kind, outcome).inc()

        return handle

    async def _give_back(
        self, message: AbstractIncomingMessage, mailbox: str, error: BaseException
    ) -> None:
        """The database is away: after a pause, back to the queue for another try."""
        log.warning("portal_mailbox_retry", mailbox=mailbox, error=describe_error(error))
        await asyncio.sleep(RETRY_PAUSE_SECONDS)
        await message.nack(requeue=True)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
