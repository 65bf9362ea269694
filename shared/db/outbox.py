"""The transactional outbox.

Messages to publish are written as rows in the same transaction as the state change.
After commit the writer publishes its own rows at once (the fast path) and deletes
them; a relay in every service sweeps rows older than a grace period, so a process
that died between commit and publish loses nothing. The row's `message_id` is the
AMQP message_id, so a row published twice is a duplicate delivery, never a second
effect.

The services and the portal share the table. A row names its `sender`: None for the
services, whose relays publish each other's rows, or the portal, whose requests only
its own relay may publish (with its broker login as `user_id`: the broker refuses any
other login's). Each `Outbox` relays the rows of its sender only.

The relay must not publish a row whose fast path is still under way, or every slow
moment turns into duplicate deliveries: a row's age counts from its insert at the end
of the transaction (not from the transaction's start, which may be long before), and
the relay skips the rows this process is publishing or has yet to delete.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from shared.amqp.publisher import Publisher
from shared.db.pool import Conn
from shared.logs import describe_error, get_logger
from shared.outgoing import OutboundMessage

log = get_logger(__name__)


@dataclass(frozen=True)
class PendingRow:
    id: int
    message: OutboundMessage


async def write(
    conn: Conn, messages: Sequence[OutboundMessage], *, sender: str | None = None
) -> list[PendingRow]:
    """Write the messages in the caller's transaction, to be published by `sender`'s
    outbox (None: the services')."""
    if not messages:
        return []
    # clock_timestamp(), not now(): the grace period starts at this insert, just
    # before commit, not when a possibly long transaction began.
    ids = await conn.fetch(
        """INSERT INTO outbox (message_id, exchange, routing_key, body, message_type,
                               correlation_id, headers, sender, created_at)
           SELECT m.*, $8, clock_timestamp()
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::text[],
                       $6::text[], $7::jsonb[]) AS m
           RETURNING id""",
        [m.message_id for m in messages],
        [m.exchange for m in messages],
        [m.routing_key for m in messages],
        [m.body for m in messages],
        [m.message_type for m in messages],
        [m.correlation_id for m in messages],
        [None if m.headers is None else dict(m.headers) for m in messages],
        sender,
    )
    return [PendingRow(r["id"], m) for r, m in zip(ids, messages, strict=True)]


async def discard(conn: Conn, message_ids: Sequence[uuid.UUID], *, sender: str) -> None:
    """Drop `sender`'s rows of these messages: the receiver answered them, so they
    were published, whatever this process heard."""
    await conn.execute(
        "DELETE FROM outbox WHERE sender = $1 AND message_id = ANY($2::uuid[])",
        sender,
        list(message_ids),
    )


async def _publish_all(
    publisher: Publisher, messages: Sequence[OutboundMessage], user_id: str | None
) -> None:
    """Publish the rows' messages, with `user_id` (the sender's login) when it has one:
    a row does not store it."""
    if user_id is not None:
        messages = [replace(m, user_id=user_id) for m in messages]
    await publisher.publish(*messages)


@dataclass
class UnitOfWork:
    """One transaction and the messages it will publish once committed."""

    conn: Conn
    messages: list[OutboundMessage] = field(default_factory=list)

    def emit(self, *messages: OutboundMessage) -> None:
        self.messages.extend(messages)


class Outbox:
    """Publishes the rows of one sender: its fast path after commit, its relay for
    the rows left behind. `publisher` may be None while its broker connection is
    away (the portal's): the fast path defers and the relay waits."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        publisher: Publisher | None,
        *,
        grace_seconds: float = 5.0,
        sender: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self._pool = pool
        self.publisher = publisher
        self._grace = grace_seconds
        self.sender = sender
        self._user_id = user_id
        # Rows published by the fast path, waiting for one batched DELETE.
        self._published: list[int] = []
        self._deleter: asyncio.Task[None] | None = None
        # Rows whose fast path is under way in this process (publishing, or published
        # and not yet deleted): the relay leaves them alone.
        self._in_flight: set[int] = set()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A transaction whose emitted messages are written to the outbox before commit
        and published right after it."""
        async with self._pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn)
            yield uow
            pending = await write(conn, uow.messages, sender=self.sender)
        # Publish only after the connection went back to the pool: dispatch needs a
        # connection of its own, and holding one while waiting for another starves the
        # pool when more messages are in flight than it has connections.
        await self.dispatch(pending)

    async def dispatch(self, rows: Sequence[PendingRow]) -> bool:
        """Fast path after commit; True once published. A failure is logged, not
        raised: the relay retries.

        Published rows are deleted in batches by one background task: while its DELETE
        runs, the rows that other handlers publish meanwhile gather for the next one.
        A row whose DELETE is lost (a crash, the database gone) is published once more
        by the relay after the grace period: a duplicate delivery, never a second effect.
        """
        if not rows:
            return True
        ids = [r.id for r in rows]
        self._in_flight.update(ids)
        try:
            if self.publisher is None:
                raise ConnectionError("not connected to the broker")
            await _publish_all(self.publisher, [r.message for r in rows], self._user_id)
        except Exception as exc:
            self._in_flight.difference_update(ids)
            log.warning(
                "outbox_dispatch_deferred", sender=self.sender, error=describe_error(exc, 300)
            )
            return False
        self._published.extend(ids)
        if self._deleter is None or self._deleter.done():
            self._deleter = asyncio.create_task(self._delete_published())
        return True

    async def _delete_published(self) -> None:
        while self._published:
            ids, self._published = self._published, []
            try:
                await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
            except Exception as exc:
                log.warning("outbox_delete_deferred", error=describe_error(exc, 300))
            finally:
                # Deleted, or left for the relay to publish again after the grace.
                self._in_flight.difference_update(ids)

    async def flush(self) -> None:
        """Wait until the rows published so far are deleted (before closing the pool)."""
        while self._deleter is not None and not self._deleter.done():
            await asyncio.shield(self._deleter)

    async def relay_once(self, *, batch: int = 500, grace_seconds: float | None = None) -> int:
        """Publish and delete up to `batch` of this sender's rows older than the grace
        period, except those whose fast path is under way here."""
        publisher = self.publisher
        if publisher is None:
            return 0
        grace = self._grace if grace_seconds is None else grace_seconds
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT id, message_id, exchange, routing_key, body, message_type,
                          correlation_id, headers
                   FROM outbox
                   WHERE created_at <= now() - make_interval(secs => $1)
                     AND sender IS NOT DISTINCT FROM $3
                     AND id <> ALL($4::bigint[])
                   ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED""",
                grace,
                batch,
                self.sender,
                list(self._in_flight),
            )
            if not rows:
                return 0
            await _publish_all(
                publisher,
                [
                    OutboundMessage(
                        r["exchange"],
                        r["routing_key"],
                        r["body"],
                        r["message_type"],
                        r["message_id"],
                        r["correlation_id"],
                        r["headers"],
                    )
                    for r in rows
                ],
                self._user_id,
            )
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            return len(rows)

    async def backlog_and_lag(self) -> tuple[int, float]:
        """This sender's rows waiting, and the age in seconds of the oldest."""
        row = await self._pool.fetchrow(
            """SELECT count(*) AS n,
                      coalesce(extract(epoch FROM now() - min(created_at)), 0) AS lag
               FROM outbox WHERE sender IS NOT DISTINCT FROM $1""",
            self.sender,
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
                log.warning(
                    "outbox_relay_failed", sender=self.sender, error=describe_error(exc, 300)
                )
            await asyncio.sleep(interval)
