"""A consumer: its subscription to one queue, kept alive, and each delivery handed on
alone or in a batch (see the package doc)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp import compat
from shared.amqp.consuming.acks import AckedHook, Acks
from shared.amqp.consuming.batches import Batches
from shared.amqp.consuming.codec import BatchHandler, Codec
from shared.amqp.consuming.delivery import Delivery
from shared.amqp.consuming.failures import Failures
from shared.amqp.consuming.handling import Handling, OutcomeHook
from shared.amqp.publisher import Publisher
from shared.logs import describe_error, get_logger

log = get_logger(__name__)

Item = TypeVar("Item")
Redeclare = Callable[[], Awaitable[None]]

WATCH_INTERVAL_SECONDS = 2.0


@dataclass(frozen=True)
class ConsumerSettings:
    prefetch: int
    retry_delays_ms: tuple[int, ...]
    # The services' own login: headers on messages it published are the runtime's.
    service_user: str
    # Deliveries handled together at most; 1: each alone, as it comes.
    batch_size: int = 1
    # Batches handled at once.
    batch_concurrency: int = 2


class Consumer(Generic[Item]):
    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: Publisher,
        queue_name: str,
        codec: Codec[Item],
        handler: BatchHandler[Item],
        settings: ConsumerSettings,
        *,
        on_outcome: OutcomeHook | None = None,
        on_acked: AckedHook | None = None,
        redeclare: Redeclare | None = None,
    ) -> None:
        self._connection = connection
        self.queue_name = queue_name
        self._settings = settings
        self._redeclare = redeclare
        self._acks = Acks(settings.prefetch, on_acked)
        failures = Failures(publisher, queue_name, settings.retry_delays_ms)
        self._handling = Handling(queue_name, codec, handler, self._acks, failures, on_outcome)
        self._batches = (
            Batches(
                queue_name,
                self._handling.run,
                size=settings.batch_size,
                concurrency=settings.batch_concurrency,
            )
            if settings.batch_size > 1
            else None
        )
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def is_consuming(self) -> bool:
        """True when the broker knows our consumer (it can be cancelled by the broker,
        e.g. when the queue is deleted, or lost while the connection recovers)."""
        if self._channel is None or self._channel.is_closed or self._consumer_tag is None:
            return False
        try:
            return await compat.consumer_registered(self._channel, self._consumer_tag)
        except Exception:
            return False

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._settings.prefetch)
        await self._subscribe()
        self._watchdog = asyncio.create_task(self._watch())

    async def _subscribe(self) -> None:
        assert self._channel is not None
        queue = await self._channel.get_queue(self.queue_name, ensure=True)
        self._consumer_tag = await queue.consume(self._on_message)

    async def _watch(self) -> None:
        """Notice a consumer the broker cancelled and subscribe again (re-declaring the
        topology first, in case its queue was deleted)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
            if self._channel is None or self._channel.is_closed or await self.is_consuming():
                continue
            log.warning("consumer_lost_resubscribing")
            try:
                if self._redeclare is not None:
                    await self._redeclare()
                stale = self._consumer_tag
                if stale is not None:
                    queue = await self._channel.get_queue(self.queue_name, ensure=False)
                    await queue.cancel(stale)
                await self._subscribe()
                log.info("consumer_resubscribed")
            except Exception as exc:
                log.error("consumer_resubscribe_failed", error=describe_error(exc))

    async def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop taking new messages, let in-flight ones finish, then close."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        if self._channel is not None and self._consumer_tag is not None:
            queue = await self._channel.get_queue(self.queue_name, ensure=False)
            await queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        # Batch runners settle the deliveries that wait on them.
        busy = self._in_flight | (self._batches.runners if self._batches else set())
        if busy:
            await asyncio.wait(busy, timeout=drain_timeout)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        # The channel is open: it has just delivered.
        delivery = Delivery(message, self._settings.service_user, channel_key=id(message.channel))
        self._acks.received(delivery)
        try:
            if self._batches is None:
                await self._handling.run([delivery])
            else:
                await self._batches.join(delivery)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            self._acks.done_with(delivery)
