"""A consumer on aiormq's channel, without aio-pika's message objects.

Receiving a message through the services' consumer costs about two and a half times
the client CPU of receiving it as aiormq's `DeliveredMessage` and acking many at once
(`bench/receive.py`, docs/performance.md "Receiving cheaply"). Ingest's first pass
does little more than receive (`services/ingest/lanes.py`), so it consumes this way:
messages are handed over in batches, in order, one batch at a time, and a batch the
handler returned from is acked with one `multiple` ack. A handler that raises has its
batch handed over again after a pause, unacked all the while (the broker gives the
messages to another consumer if this one's channel goes). Once the broker confirmed
an ack, `on_acked` hears of the batch, without holding up the next one. (Two
batches in hand at once did not read faster: the pass waits on the CPU.)

What it shares with the services' consumer (`shared.amqp.consuming`) it takes from
there: each message is read as a `Delivery` (which headers to trust, whether it may
have been handled before), acked and confirmed by `Acks`, and configured by
`ConsumerSettings` (its prefetch, batch size and the services' login; not its retry
delays: a failing batch is handed over again, unacked, instead).

The channel is the robust connection's, but aio-pika does not restore a consumer it
did not make: after a reconnect, or when the broker cancels the consumer (its queue
was deleted), `run` opens a channel and consumes again. `DeliveredMessage`, `basic_*`
are aiormq's public API; which consumers a channel still has is not
(`compat.consumer_on`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import aiormq
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection
from aiormq.abc import DeliveredMessage

from shared.amqp import compat
from shared.amqp.consuming import AckedHook, Acks, ConsumerSettings, Delivery, OutcomeHook
from shared.logs import describe_error, get_logger

log = get_logger(__name__)

REOPEN_SECONDS = 1.0
WATCH_SECONDS = 2.0
RETRY_SECONDS = (0.2, 1.0, 5.0)
DRAIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    """A delivered message, with the fields and the `ack` of aio-pika's
    `IncomingMessage` that `Delivery` and `Acks` use (so a `Delivery` can wrap it)."""

    body: bytes
    headers: dict[str, Any]
    message_id: str | None
    user_id: str | None
    correlation_id: str | None
    routing_key: str | None
    redelivered: bool
    type: str | None
    content_type: str | None
    content_encoding: str | None
    app_id: str | None
    timestamp: datetime | None
    delivery_tag: int
    channel: aiormq.abc.AbstractChannel

    @classmethod
    def of(cls, message: DeliveredMessage) -> Received:
        props = message.header.properties
        deliver = message.delivery
        return cls(
            body=message.body,
            headers=dict(props.headers or {}),
            message_id=props.message_id,
            user_id=props.user_id,
            correlation_id=props.correlation_id,
            routing_key=message.routing_key,
            redelivered=bool(getattr(deliver, "redelivered", False)),
            type=props.message_type,
            content_type=props.content_type,
            content_encoding=props.content_encoding,
            app_id=props.app_id,
            timestamp=props.timestamp,
            delivery_tag=int(getattr(deliver, "delivery_tag", 0) or 0),
            channel=message.channel,
        )

    async def ack(self, multiple: bool = False) -> None:
        await self.channel.basic_ack(self.delivery_tag, multiple=multiple)


BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]
Redeclare = Callable[[], Awaitable[None]]


class RawConsumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue: str,
        handler: BatchHandler,
        settings: ConsumerSettings,
        *,
        on_acked: AckedHook | None = None,
        redeclare: Redeclare | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.queue_name = queue
        self._connection = connection
        self._handler = handler
        self._settings = settings
        self._acks = Acks(settings.prefetch, on_acked)
        self._redeclare = redeclare
        self._on_outcome = on_outcome
        self._channel: AbstractChannel | None = None
        self._underlay: aiormq.Channel | None = None
        self._consumer_tag: str | None = None
        self._waiting: list[Delivery] = []
        self._arrived = asyncio.Event()
        self._confirming: set[asyncio.Task[None]] = set()
        # Set while nothing received waits to be handled or acked.
        self._idle = asyncio.Event()
        self._idle.set()

    def is_consuming(self) -> bool:
        """True while the broker knows our consumer (as far as this process heard)."""
        underlay, tag = self._underlay, self._consumer_tag
        if underlay is None or underlay.is_closed or tag is None:
            return False
        return compat.consumer_on(underlay, tag)

    async def run(self) -> None:
        """Consume until cancelled: subscribe, hand over batches, and subscribe again
        whenever the channel or the consumer is lost."""
        handing = asyncio.create_task(self._hand_over())
        try:
            while True:
                subscribed = False
                try:
                    await self._subscribe()
                    subscribed = True
                    await self._watch()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Once per loss, not once a second while the broker is away (the
                    # runtime reports the broker's state).
                    if subscribed:
                        log.warning(
                            "raw_consumer_lost", queue=self.queue_name, error=describe_error(exc)
                        )
                await self._close_channel()
                await asyncio.sleep(REOPEN_SECONDS)
        finally:
            await self._drain()
            handing.cancel()
            await asyncio.gather(handing, *self._confirming, return_exceptions=True)
            await self._close_channel()

    async def _drain(self) -> None:
        """Stop taking messages and give what is in hand `DRAIN_SECONDS` to be handled
        and acked; the rest the broker gives to a consumer again once the channel
        closes."""
        underlay, tag = self._underlay, self._consumer_tag
        if underlay is not None and not underlay.is_closed and tag is not None:
            try:
                await asyncio.wait_for(underlay.basic_cancel(tag), REOPEN_SECONDS)
            except Exception as exc:
                log.warning("raw_consumer_cancel_failed", error=describe_error(exc))
        try:
            await asyncio.wait_for(self._idle.wait(), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("raw_consumer_drain_timed_out", left=len(self._waiting))

    async def _subscribe(self) -> None:
        self._channel = await self._connection.channel()
        underlay = await self._channel.get_underlay_channel()
        assert isinstance(underlay, aiormq.Channel)
        await underlay.basic_qos(prefetch_count=self._settings.prefetch)
        ok = await underlay.basic_consume(self.queue_name, self._on_message, no_ack=False)
        self._underlay, self._consumer_tag = underlay, ok.consumer_tag
        log.info("raw_consumer_subscribed", queue=self.queue_name)

    async def _watch(self) -> None:
        """Return when the channel closed; consume again when the broker cancelled
        the consumer (re-declaring the topology first: its queue may be gone)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            underlay = self._underlay
            if underlay is None or underlay.is_closed:
                return
            if not self.is_consuming():
                log.warning("consumer_lost_resubscribing", queue=self.queue_name)
                if self._redeclare is not None:
                    await self._redeclare()
                ok = await underlay.basic_consume(self.queue_name, self._on_message, no_ack=False)
                self._consumer_tag = ok.consumer_tag
                log.info("consumer_resubscribed", queue=self.queue_name)

    async def _close_channel(self) -> None:
        channel, self._channel, self._underlay, self._consumer_tag = self._channel, None, None, None
        # What waits from the old channel can no longer be acked: the broker gives it
        # to a consumer again.
        self._forget([d for d in self._waiting if d.message.channel.is_closed])
        if not self._waiting and not self._arrived.is_set():
            self._idle.set()
        if channel is not None and not channel.is_closed:
            try:
                await channel.close()
            except Exception as exc:
                log.warning("raw_channel_close_failed", error=describe_error(exc))

    def _forget(self, deliveries: Sequence[Delivery]) -> None:
        """Drop deliveries whose channel is gone: they cannot be acked any more."""
        gone = set(map(id, deliveries))
        self._waiting = [d for d in self._waiting if id(d) not in gone]
        for delivery in deliveries:
            self._acks.done_with(delivery)

    async def _on_message(self, message: DeliveredMessage) -> None:
        received = Received.of(message)
        # `Received` has what `Delivery` reads of aio-pika's message, so the runtime's
        # reading of a delivery (runtime headers, redelivery) is the one of every queue.
        delivery = Delivery(
            cast(AbstractIncomingMessage, received),
            self._settings.service_user,
            channel_key=id(received.channel),
        )
        self._acks.received(delivery)
        self._waiting.append(delivery)
        self._idle.clear()
        self._arrived.set()

    async def _hand_over(self) -> None:
        """One batch at a time, in order, so one `multiple` ack settles exactly it."""
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            # Let the rest of the same burst arrive before taking a batch.
            await asyncio.sleep(0)
            while self._waiting:
                batch = self._take()
                if await self._handle(batch):
                    await self._ack(batch)
                else:
                    self._forget(batch)
            self._idle.set()

    def _take(self) -> list[Delivery]:
        """Up to a batch of what waits, all from one channel (tags count per channel)."""
        channel = self._waiting[0].channel_key
        batch: list[Delivery] = []
        for delivery in self._waiting:
            if delivery.channel_key != channel or len(batch) >= self._settings.batch_size:
                break
            batch.append(delivery)
        del self._waiting[: len(batch)]
        return batch

    async def _handle(self, batch: list[Delivery]) -> bool:
        """Hand `batch` over until the handler returns (True) or its channel is gone
        (False: the broker delivers it again)."""
        loop = asyncio.get_running_loop()
        for attempt in itertools.count():
            if batch[0].message.channel.is_closed:
                return False
            started = loop.time()
            try:
                await self._handler(batch)
            except Exception as exc:
                pause = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.warning(
                    "raw_batch_failed_retrying",
                    queue=self.queue_name,
                    batch=len(batch),
                    retry_in_s=pause,
                    error=describe_error(exc),
                )
                await asyncio.sleep(pause)
                continue
            if self._on_outcome is not None:
                seconds = loop.time() - started
                for _ in batch:
                    self._on_outcome(self.queue_name, "ok", seconds)
            return True
        raise AssertionError("unreachable")

    async def _ack(self, batch: list[Delivery]) -> None:
        """Ack the batch (one `multiple` ack: it is every unsettled delivery of its
        channel up to its last); `on_acked` hears of it once the broker confirmed the
        ack, while the next batch is handled."""
        for group in await self._acks.ack(batch):
            task = asyncio.create_task(self._acks.report_acked(group))
            self._confirming.add(task)
            task.add_done_callback(self._confirming.discard)
