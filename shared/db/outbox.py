"""The transactional outbox.

Messages to publish are written as rows in the same transaction as the state change.
After commit the writer publishes its own rows at once (the fast path) and deletes
them; a relay in every service sweeps rows older than a grace period, so a process
that died between commit and publish loses nothing. The row's `message_id` is the
AMQP message_id, so a row published twice is a duplicate delivery, never a second
effect.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.amqp.publisher import Outgoing, Publisher
from shared.db.pool import Conn
from shared.logs import describe_error, get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class OutboundMessage:
    exchange: str
    routing_key: str
    body: bytes
    message_type: str
    message_id: uuid.UUID
    correlation_id: str | None = None


@dataclass(frozen=True)
class PendingRow:
    id: int
    message: OutboundMessage


async def write(conn: Conn, messages: Sequence[OutboundMessage]) -> list[PendingRow]:
    if not messages:
        return []
    # created_at is the time of writing, just before commit, not the column's default
    # now() (the transaction's start): the relay's grace period must run from the
    # commit, or a transaction that took longer than the grace period has its rows
    # published twice, by the relay and by the writer's own fast path.
    ids = await conn.fetch(
        """INSERT INTO outbox
               (message_id, exchange, routing_key, body, message_type, correlation_id,
                created_at)
           SELECT *, clock_timestamp() FROM unnest($1::uuid[], $2::text[], $3::text[],
                                                   $4::bytea[], $5::text[], $6::text[])
           RETURNING id""",
        [m.message_id for m in messages],
        [m.exchange for m in messages],
        [m.routing_key for m in messages],
        [m.body for m in messages],
        [m.message_type for m in messages],
        [m.correlation_id for m in messages],
    )
    return [PendingRow(r["id"], m) for r, m in zip(ids, messages, strict=True)]


async def _publish_all(publisher: Publisher, messages: Sequence[OutboundMessage]) -> None:
    await publisher.publish_many(
        [
            Outgoing(
                m.exchange,
                m.routing_key,
                m.body,
                message_id=str(m.message_id),
                correlation_id=m.correlation_id,
                message_type=m.message_type,
            )
            for m in messages
        ]
    )


@dataclass
class UnitOfWork:
    """One transaction and the messages it will publish once committed."""

    conn: Conn
    messages: list[OutboundMessage] = field(default_factory=list)

    def emit(self, *messages: OutboundMessage) -> None:
        self.messages.extend(messages)


class Outbox:
    def __init__(
        self, pool: asyncpg.Pool[Any], publisher: Publisher, *, grace_seconds: float = 5.0
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._grace = grace_seconds
        # Rows published by the fast path, waiting for one batched DELETE.
        self._published: list[int] = []
        self._deleter: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction whose emitted messages are written to the outbox before commit
        and published right after it."""
        async with self._pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn)
            yield uow
            pending = await write(conn, uow.messages)
        # Publish only after the connection went back to the pool: dispatch needs a
        # connection of its own, and holding one while waiting for another starves the
        # pool when more messages are in flight than it has connections.
        await self.dispatch(pending)

    async def dispatch(self, rows: Sequence[PendingRow]) -> None:
        """Fast path after commit. A failure is logged, not raised: the relay retries.

        Published rows are deleted in batches by one background task: while its DELETE
        runs, the rows that other handlers publish meanwhile gather for the next one.
        A row whose DELETE is lost (a crash, the database gone) is published once more
        by the relay after the grace period: a duplicate delivery, never a second effect.
        """
        if not rows:
            return
        try:
            await _publish_all(self._publisher, [r.message for r in rows])
        except Exception as exc:
            log.warning("outbox_dispatch_deferred", error=describe_error(exc, 300))
            return
        self._published.extend(r.id for r in rows)
        if self._deleter is None or self._deleter.done():
            self._deleter = asyncio.create_task(self._delete_published())

    async def _delete_published(self) -> None:
        while self._published:
            ids, self._published = self._published, []
            try:
                await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
            except Exception as exc:
                log.warning("outbox_delete_deferred", error=describe_error(exc, 300))

    async def flush(self) -> None:
        """Wait until the rows published so far are deleted (before closing the pool)."""
        while self._deleter is not None and not self._deleter.done():
            await asyncio.shield(self._deleter)

    async def relay_once(self, *, batch: int = 500, grace_seconds: float | None = None) -> int:
        """Publish and delete up to `batch` rows older than the grace period."""
        grace = self._grace if grace_seconds is None else grace_seconds
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, message_id, exchange, routing_key, body, message_type, correlation_id
                   FROM outbox WHERE created_at <= now() - make_interval(secs => $1)
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
                grace,
                batch,
            )
            if not rows:
                return 0
            await _publish_all(
                self._publisher,
                [
                    OutboundMessage(
                        r["exchange"],
                        r["routing_key"],
                        r["body"],
                        r["message_type"],
                        r["message_id"],
                        r["correlation_id"],
                    )
                    for r in rows
                ],
            )
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    async def backlog_and_lag(self) -> tuple[int, float]:
        """Rows waiting, and the age in seconds of the oldest."""
        row = await self._pool.fetchrow(
            """SELECT count(*) AS n,
                      coalesce(extract(epoch FROM now() - min(created_at)), 0) AS lag
               FROM outbox"""
        )
        assert row is not None
        return int(row["n"]), float(row["lag"])

    async def relay_forever(
        self, interval: float = 1.0, *, paused: Callable[[], bool] = lambda: False
    ) -> None:
        """Relay every `interval` seconds, except while `paused()` (a backend is away:
        trying would only fail and log once a second)."""
        while True:
            if paused():
                await asyncio.sleep(interval)
                continue
            try:
                while await self.relay_once() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_failed", error=describe_error(exc, 300))
            await asyncio.sleep(interval)
