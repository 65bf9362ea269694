"""The consumer runtime: manual acks, bounded prefetch, retry with backoff, parking.

A handler that returns normally has made its outcome durable; the message is acked.
A handler that raises is retried through the work queue's delay queues (the attempt
count travels in a header); after the last delay the message is parked whole, with
the error in its headers, for an operator to replay. If even that publish fails the
message is requeued, and the quorum queue's delivery limit parks it as a last resort.

A consumer may also have a batch handler: messages that arrive while earlier ones are
being handled are then handed over together (one database transaction for many
messages instead of one each). A batch that fails is handled again message by message
through the single handler, so one bad message never takes its neighbours with it.

A consumer may be told when the broker has *confirmed* the ack of deliveries it handled
successfully (`on_acked`): after the ack, a synchronous call on the same channel
(`basic.qos` with the prefetch it has) returns only once the broker processed every
frame before it, the ack included. Ingest uses this to know that a publish can no
longer be delivered (see `shared.db.arrivals`). Deliveries handed to a retry or parked
queue are not reported: the message lives on there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp import compat
from shared.amqp.publisher import Outgoing, Publisher
from shared.amqp.topology import parked_queue, retry_queue
from shared.logs import describe_error, get_logger, message_context

ATTEMPT_HEADER = "x-vi-attempt"
ERROR_HEADER = "x-vi-error"
USER_ID_HEADER = "x-vi-user-id"
ROUTING_KEY_HEADER = "x-vi-routing-key"
QUEUE_HEADER = "x-vi-queue"
# On a copy of a message that had no message_id: the broker client gives every
# message it publishes an id, so the copy carries an invented one and this flag.
NO_MESSAGE_ID_HEADER = "x-vi-no-message-id"
REPLAYED_HEADER = "x-vi-replayed"
# The headers the runtime writes on its own copies and trusts on them: whatever a
# partner put in these is dropped before the runtime copies its message.
RUNTIME_HEADERS = frozenset(
    {
        ATTEMPT_HEADER,
        ERROR_HEADER,
        USER_ID_HEADER,
        ROUTING_KEY_HEADER,
        QUEUE_HEADER,
        NO_MESSAGE_ID_HEADER,
        REPLAYED_HEADER,
    }
)

log = get_logger(__name__)


class PoisonMessage(Exception):
    """A message that can never succeed: park it at once instead of retrying."""


@dataclass
class Binding:
    """Durable state a handler tied a delivery to, kept with the delivery while this
    process holds it (ingest: the arrival it recorded for it)."""

    arrival_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Delivery:
    message: AbstractIncomingMessage
    service_user: str
    # Handled again one by one after its batch failed: its batch may have got as far
    # as answering it.
    after_failed_batch: bool = False
    # Shared by the copies `replace` makes, so a failed batch's binding is reused.
    binding: Binding = field(default_factory=Binding, compare=False, repr=False)
    # Which channel it came on: delivery tags count per channel, and after a reconnect
    # deliveries of the old channel and the new one can wait in one batch.
    channel_key: int = field(default=0, compare=False)

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def correlation_id(self) -> str | None:
        return self.message.correlation_id

    @property
    def _from_runtime(self) -> bool:
        # Only the services' own login can set this user_id (the broker checks it), so
        # headers on such a message were written by the runtime, never by a partner.
        return self.message.user_id == self.service_user and USER_ID_HEADER in self.headers

    @property
    def attempt(self) -> int:
        value = self.headers.get(ATTEMPT_HEADER, 0) if self._from_runtime else 0
        return int(value) if isinstance(value, int) else 0

    @property
    def seen_before(self) -> bool:
        """True when this very message may have been handled before (broker redelivery,
        our own retry, an operator's replay), as opposed to a fresh publish."""
        replayed = self._from_runtime and bool(self.headers.get(REPLAYED_HEADER))
        return (
            bool(self.message.redelivered)
            or self.attempt > 0
            or replayed
            or self.after_failed_batch
        )

    @property
    def user_id(self) -> str | None:
        if self._from_runtime:
            original = self.headers.get(USER_ID_HEADER)
            return original if isinstance(original, str) and original else None
        return self.message.user_id

    @property
    def message_id(self) -> str | None:
        """The message_id the sender gave, None when it gave none."""
        if self._from_runtime and self.headers.get(NO_MESSAGE_ID_HEADER):
            return None
        return self.message.message_id

    @property
    def routing_key(self) -> str:
        if self._from_runtime:
            original = self.headers.get(ROUTING_KEY_HEADER)
            if isinstance(original, str):
                return original
        return self.message.routing_key or ""

    def copy_for_runtime(
        self, queue: str, headers: Mapping[str, Any], *, drop: Collection[str] = ()
    ) -> Outgoing:
        """The same message, re-published by the runtime to `queue` (retry, park,
        dead letter, replay), with `headers` added and the `drop` headers removed."""
        msg = self.message
        merged = self.headers
        if not self._from_runtime:
            # A partner's own x-vi-user-id would otherwise make the copy speak for
            # another partner once the runtime's login vouches for it.
            for name in RUNTIME_HEADERS:
                merged.pop(name, None)
        merged.setdefault(USER_ID_HEADER, self.user_id or "")
        merged.setdefault(ROUTING_KEY_HEADER, self.routing_key)
        if msg.message_id is None:
            merged[NO_MESSAGE_ID_HEADER] = True
        merged.update(headers)
        for name in drop:
            merged.pop(name, None)
        return Outgoing(
            "",
            queue,
            msg.body,
            message_id=msg.message_id,
            correlation_id=msg.correlation_id,
            message_type=msg.type,
            headers=merged,
            user_id=self.service_user,
            content_type=msg.content_type,
            content_encoding=msg.content_encoding,
            app_id=msg.app_id,
            timestamp=msg.timestamp,
        )


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]
OutcomeHook = Callable[[str, str, float], None]
AckedHook = Callable[[Sequence[Delivery]], Awaitable[None]]
Redeclare = Callable[[], Awaitable[None]]

WATCH_INTERVAL_SECONDS = 2.0


class Consumer:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        publisher: Publisher,
        queue_name: str,
        handler: Handler,
        *,
        prefetch: int,
        retry_delays_ms: tuple[int, ...],
        service_user: str,
        on_outcome: OutcomeHook | None = None,
        redeclare: Redeclare | None = None,
        batch_handler: BatchHandler | None = None,
        batch_size: int = 1,
        batch_concurrency: int = 2,
        on_acked: AckedHook | None = None,
    ) -> None:
        self._connection = connection
        self._publisher = publisher
        self.queue_name = queue_name
        self._handler = handler
        self._prefetch = prefetch
        self._delays = retry_delays_ms
        self._service_user = service_user
        self._on_outcome = on_outcome
        self._redeclare = redeclare
        self._on_acked = on_acked
        self._channel: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._batch_handler = batch_handler if batch_size > 1 else None
        self._batch_size = batch_size
        self._batch_concurrency = max(1, batch_concurrency)
        # Deliveries waiting for a batch, each with the future its callback waits on.
        self._waiting: list[tuple[Delivery, asyncio.Future[None]]] = []
        self._batch_runners: set[asyncio.Task[None]] = set()
        # (channel key, delivery tag) of every delivery received and not yet settled.
        self._unsettled: set[tuple[int, int]] = set()

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
        await self._channel.set_qos(prefetch_count=self._prefetch)
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
        busy = self._in_flight | self._batch_runners
        if busy:
            await asyncio.wait(busy, timeout=drain_timeout)
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        channel_key = id(message.channel)  # open: it has just delivered
        unsettled = None if message.delivery_tag is None else (channel_key, message.delivery_tag)
        if unsettled is not None:
            self._unsettled.add(unsettled)
        try:
            delivery = Delivery(message, self._service_user, channel_key=channel_key)
            if self._batch_handler is None:
                await self._process(delivery)
            else:
                await self._join_batch(delivery)
        finally:
            if task is not None:
                self._in_flight.discard(task)
            if unsettled is not None:
                self._unsettled.discard(unsettled)

    async def _join_batch(self, delivery: Delivery) -> None:
        """Wait until this delivery was handled as part of a batch (and settled)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, done))
        if len(self._batch_runners) < self._batch_concurrency:
            self._batch_runners.add(asyncio.create_task(self._run_batches()))
        await done

    async def _run_batches(self) -> None:
        me = asyncio.current_task()
        try:
            # Let the other deliveries of the same burst join before taking a batch.
            await asyncio.sleep(0)
            # No await between finding the list empty and leaving the runner set, so a
            # delivery that joins later always finds a free runner slot.
            while self._waiting:
                batch = self._waiting[: self._batch_size]
                del self._waiting[: self._batch_size]
                deliveries = [delivery for delivery, _ in batch]
                try:
                    await self._process_batch(deliveries)
                except BaseException as exc:
                    await self._give_back(deliveries, exc)
                    if not isinstance(exc, Exception) and (me is None or me.cancelling()):
                        raise  # this runner itself is being stopped
                finally:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            if me is not None:
                self._batch_runners.discard(me)

    async def _give_back(self, deliveries: Sequence[Delivery], exc: BaseException) -> None:
        """A batch that ended in something its handling does not catch (a cancellation
        from inside a library, a bug): the broker gets back what was not settled.
        Unsettled, the deliveries would stay unacked for good and, once they fill the
        prefetch, the queue would stall while the consumer looks healthy."""
        unsettled = [d for d in deliveries if not d.message.processed]
        log.error(
            "batch_aborted_given_back",
            queue=self.queue_name,
            batch=len(deliveries),
            given_back=len(unsettled),
            error=describe_error(exc) or type(exc).__name__,
        )
        await asyncio.gather(*(_settle(d.message.nack(requeue=True), "nack") for d in unsettled))

    async def _process_batch(self, deliveries: list[Delivery]) -> None:
        assert self._batch_handler is not None
        if len(deliveries) == 1:
            await self._process(deliveries[0])
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with message_context(queue=self.queue_name, batch=len(deliveries)):
                await self._batch_handler(deliveries)
        except Exception as exc:
            log.warning(
                "batch_failed_one_by_one",
                queue=self.queue_name,
                batch=len(deliveries),
                error=describe_error(exc),
            )
            await asyncio.gather(
                *(self._process(replace(d, after_failed_batch=True)) for d in deliveries)
            )
            return
        await self._ack_all(deliveries)
        if self._on_outcome is not None:
            seconds = loop.time() - started
            for _ in deliveries:
                self._on_outcome(self.queue_name, "ok", seconds)

    async def _ack_all(self, deliveries: Sequence[Delivery]) -> None:
        """Ack a handled batch, channel by channel (after a reconnect a batch can hold
        deliveries of the old channel and of the new one, whose tags both count from
        1): with one `multiple` ack when it holds every unsettled delivery of that
        channel up to its highest (the usual case), else one ack each. (One `multiple`
        ack on the old channel once left the new channel's deliveries of the batch
        unacked for good: a stalled queue with a healthy-looking consumer.)"""
        for channel_key, group in by_channel(deliveries).items():
            tags = {d.message.delivery_tag for d in group if d.message.delivery_tag is not None}
            unsettled = {tag for key, tag in self._unsettled if key == channel_key}
            top = multiple_ack_tag(tags, unsettled) if len(tags) == len(group) else None
            self._unsettled.difference_update((channel_key, tag) for tag in tags)
            if top is not None:
                last = next(d for d in group if d.message.delivery_tag == top)
                settled = [await _settle(last.message.ack(multiple=True), "ack")]
            else:
                settled = await asyncio.gather(*(_settle(d.message.ack(), "ack") for d in group))
            if all(settled):
                await self._report_acked(group)

    async def _report_acked(self, deliveries: Sequence[Delivery]) -> None:
        """Tell `on_acked` once the broker confirmed the acks (see the module doc).
        Unconfirmed (the channel went away): say nothing, the delivery may come back."""
        if self._on_acked is None or not deliveries:
            return
        try:
            await deliveries[-1].message.channel.basic_qos(prefetch_count=self._prefetch)
        except Exception as exc:
            log.warning("ack_unconfirmed", error=describe_error(exc))
            return
        try:
            await self._on_acked(deliveries)
        except Exception as exc:
            log.warning("after_ack_failed", error=describe_error(exc))

    async def _process(self, delivery: Delivery) -> None:
        msg = delivery.message
        loop = asyncio.get_running_loop()
        started = loop.time()
        with message_context(
            message_id=msg.message_id,
            correlation_id=msg.correlation_id or msg.message_id,
            queue=self.queue_name,
            attempt=delivery.attempt,
        ):
            try:
                await self._handler(delivery)
            except Exception as exc:
                outcome = await self._retry_or_park(delivery, exc)
            else:
                if await _settle(msg.ack(), "ack"):
                    await self._report_acked([delivery])
                outcome = "ok"
            if self._on_outcome is not None:
                self._on_outcome(self.queue_name, outcome, loop.time() - started)

    async def _retry_or_park(self, delivery: Delivery, exc: Exception) -> str:
        error = describe_error(exc)
        attempt = delivery.attempt
        poison = isinstance(exc, PoisonMessage)
        failure = {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: error, QUEUE_HEADER: self.queue_name}
        try:
            if not poison and attempt < len(self._delays):
                delay = self._delays[attempt]
                log.warning("handler_failed_retrying", error=error, retry_in_ms=delay)
                await self._publisher.publish_many(
                    [delivery.copy_for_runtime(retry_queue(self.queue_name, delay), failure)]
                )
                outcome = "retried"
            else:
                log.error("handler_failed_parked", error=error, poison=poison)
                await self._publisher.publish_many(
                    [delivery.copy_for_runtime(parked_queue(self.queue_name), failure)]
                )
                outcome = "parked"
        except Exception as publish_exc:
            # Could not hand the message on: give it back to the broker. The delivery
            # limit on the work queue parks it if this keeps happening.
            log.error("retry_publish_failed", error=describe_error(publish_exc))
            await _settle(delivery.message.nack(requeue=True), "nack")
            return "requeued"
        await _settle(delivery.message.ack(), "ack")
        return outcome


def by_channel(deliveries: Sequence[Delivery]) -> dict[int, list[Delivery]]:
    """The deliveries grouped by the channel they came on, in order."""
    groups: dict[int, list[Delivery]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.channel_key, []).append(delivery)
    return groups


def multiple_ack_tag(batch: set[int], unsettled: set[int]) -> int | None:
    """The tag that acks exactly `batch` with `multiple`, if there is one: the batch's
    highest, when no other unsettled delivery lies below it."""
    if not batch:
        return None
    top = max(batch)
    if any(tag <= top and tag not in batch for tag in unsettled):
        return None
    return top


async def _settle(action: Awaitable[None], what: str) -> bool:
    """Ack or nack; False when it could not be sent. When the connection is gone (a
    broker restart) the broker gives the message to a consumer again; the inbox makes
    that harmless, so this is a warning, not an error escaping into the client
    library's log as a traceback."""
    try:
        await action
    except Exception as exc:
        log.warning("settle_failed_redelivery_expected", action=what, error=describe_error(exc))
        return False
    return True
