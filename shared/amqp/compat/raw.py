"""A consumer on aiormq's channel, without aio-pika's message objects.

Receiving a message through the services' consumer costs about two and a half times
the client CPU of receiving it as aiormq's `DeliveredMessage` and acking many at once
(`bench/receive.py`, docs/performance.md "Receiving cheaply"). Ingest's first pass
does little more than receive (`services/ingest/lanes.py`), so it consumes this way:
messages are handed over in batches, in order, one batch at a time, and a batch the
handler returned from is acked with one `multiple` ack. A handler that raises has its
batch handed over again after a pause, unacked all the while (the broker gives the
messages to another consumer if this one's channel goes). Once the broker confirmed
an ack (a synchronous `basic.qos` after it), `on_acked` hears of the batch. (Two
batches in hand at once did not read faster: the pass waits on the CPU.)

The channel is the robust connection's, but aio-pika does not restore a consumer it
did not make: after a reconnect, or when the broker cancels the consumer (its queue
was deleted), `run` opens a channel and consumes again. `DeliveredMessage`, `basic_*`
are aiormq's public API; which consumers a channel still has is not (`compat`).
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
from shared.amqp.consumer import Delivery, OutcomeHook
from shared.logs import describe_error, get_logger

log = get_logger(__name__)

REOPEN_SECONDS = 1.0
WATCH_SECONDS = 2.0
RETRY_SECONDS = (0.2, 1.0, 5.0)
DRAIN_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Received:
    """A delivered message, with the fields of aio-pika's `IncomingMessage` that the
    runtime's `Delivery` reads (so a `Delivery` can wrap it) and where it came from."""

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


BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]
AckedHook = Callable[[Sequence[Delivery]], Awaitable[None]]
# A received message and the runtime's view of it (who sent it, whether it may have
# been handled before), which keeps its binding while the batch is handed over again.
Held = tuple[Received, Delivery]
Redeclare = Callable[[], Awaitable[None]]


class RawConsumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue: str,
        handler: BatchHandler,
        *,
        prefetch: int,
        batch_size: int,
        service_user: str,
        on_acked: AckedHook | None = None,
        redeclare: Redeclare | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.queue_name = queue
        self._connection = connection
        self._handler = handler
        self._prefetch = prefetch
        self._batch_size = batch_size
        self._service_user = service_user
        self._on_acked = on_acked
        self._redeclare = redeclare
        self._on_outcome = on_outcome
        self._channel: AbstractChannel | None = None
        self._underlay: aiormq.Channel | None = None
        self._consumer_tag: str | None = None
        self._waiting: list[Held] = []
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
        return tag in underlay.consumers if compat.INTERNALS else True

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
        await underlay.basic_qos(prefetch_count=self._prefetch)
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
        self._waiting = [h for h in self._waiting if not h[0].channel.is_closed]
        if not self._waiting and not self._arrived.is_set():
            self._idle.set()
        if channel is not None and not channel.is_closed:
            try:
                await channel.close()
            except Exception as exc:
                log.warning("raw_channel_close_failed", error=describe_error(exc))

    async def _on_message(self, message: DeliveredMessage) -> None:
        received = Received.of(message)
        # `Received` has what `Delivery` reads of aio-pika's message, so the runtime's
        # reading of a delivery (runtime headers, redelivery) is the one of every queue.
        delivery = Delivery(
            cast(AbstractIncomingMessage, received),
            self._service_user,
            channel_key=id(received.channel),
        )
        self._waiting.append((received, delivery))
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
            self._idle.set()

    def _take(self) -> list[Held]:
        """Up to a batch of what waits, all from one channel (tags count per channel)."""
        channel = self._waiting[0][0].channel
        batch: list[Held] = []
        for held in self._waiting:
            if held[0].channel is not channel or len(batch) >= self._batch_size:
                break
            batch.append(held)
        del self._waiting[: len(batch)]
        return batch

    async def _handle(self, batch: list[Held]) -> bool:
        """Hand `batch` over until the handler returns (True) or its channel is gone
        (False: the broker delivers it again)."""
        deliveries = [delivery for _, delivery in batch]
        loop = asyncio.get_running_loop()
        for attempt in itertools.count():
            if batch[0][0].channel.is_closed:
                return False
            started = loop.time()
            try:
                await self._handler(deliveries)
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
                for _ in deliveries:
                    self._on_outcome(self.queue_name, "ok", seconds)
            return True
        raise AssertionError("unreachable")

    async def _ack(self, batch: list[Held]) -> None:
        last, _ = batch[-1]
        channel = last.channel
        try:
            await channel.basic_ack(last.delivery_tag, multiple=True)
        except Exception as exc:
            log.warning(
                "settle_failed_redelivery_expected", action="ack", error=describe_error(exc)
            )
            return
        if self._on_acked is not None:
            task = asyncio.create_task(self._report_acked(channel, batch))
            self._confirming.add(task)
            task.add_done_callback(self._confirming.discard)

    async def _report_acked(self, channel: aiormq.abc.AbstractChannel, batch: list[Held]) -> None:
        """Tell `on_acked` once the broker confirmed the ack; unconfirmed (the channel
        went away), say nothing: the messages may come back."""
        assert self._on_acked is not None
        try:
            await channel.basic_qos(prefetch_count=self._prefetch)
        except Exception as exc:
            log.warning("ack_unconfirmed", error=describe_error(exc))
            return
        try:
            await self._on_acked([delivery for _, delivery in batch])
        except Exception as exc:
            log.warning("after_ack_failed", error=describe_error(exc))
