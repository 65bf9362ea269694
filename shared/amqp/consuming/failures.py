"""Where a message goes when its handling failed: a retry queue, the parked queue,
or, split, one message per item."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from shared.amqp.consuming.acks import settle
from shared.amqp.consuming.delivery import ATTEMPT_HEADER, ERROR_HEADER, QUEUE_HEADER, Delivery
from shared.amqp.consuming.signals import PoisonMessage
from shared.amqp.publisher import Publisher
from shared.amqp.topology import parked_queue, retry_queue
from shared.logs import describe_error, get_logger
from shared.outgoing import OutboundMessage

log = get_logger(__name__)


class RuntimeCopyable(Protocol):
    """A message the runtime can copy to another queue: a delivery, or one that came
    inside another (ingest's packs)."""

    def copy_for_runtime(self, queue: str, headers: Mapping[str, Any]) -> OutboundMessage: ...


class Failures:
    def __init__(
        self, publisher: Publisher, queue_name: str, retry_delays_ms: tuple[int, ...]
    ) -> None:
        self._publisher = publisher
        self._queue = queue_name
        self._delays = retry_delays_ms

    async def retry_or_park(self, delivery: Delivery, exc: Exception) -> str:
        """Hand the message to its next retry queue, or park it after the last (a
        poison message at once), and settle the delivery; the outcome, for metrics."""
        try:
            outcome = await self.pass_on(delivery, delivery.attempt, exc)
        except Exception as publish_exc:
            # Could not hand the message on: give it back to the broker. The delivery
            # limit on the work queue parks it if this keeps happening.
            log.error("retry_publish_failed", error=describe_error(publish_exc))
            await settle(delivery.message.nack(requeue=True), "nack")
            return "requeued"
        await settle(delivery.message.ack(), "ack")
        return outcome

    async def pass_on(self, message: RuntimeCopyable, attempt: int, exc: Exception) -> str:
        """Publish the runtime's copy of `message`, which failed at its `attempt`, to
        its next retry queue or, after the last (a poison message at once), to the
        parked queue; "retried" or "parked". Raises when the publish failed."""
        error = describe_error(exc)
        poison = isinstance(exc, PoisonMessage)
        failure = {ATTEMPT_HEADER: attempt + 1, ERROR_HEADER: error, QUEUE_HEADER: self._queue}
        if not poison and attempt < len(self._delays):
            delay = self._delays[attempt]
            log.warning("handler_failed_retrying", error=error, retry_in_ms=delay)
            target, outcome = retry_queue(self._queue, delay), "retried"
        else:
            log.error("handler_failed_parked", error=error, poison=poison)
            target, outcome = parked_queue(self._queue), "parked"
        await self._publisher.publish(message.copy_for_runtime(target, failure))
        return outcome

    async def split(self, messages: Sequence[OutboundMessage], error: str) -> None:
        """One item of a message may be the cause: pass each on as a message of its
        own (nothing of them was committed), to be retried or parked alone."""
        log.warning("message_split", items=len(messages), error=error)
        await self._publisher.publish(*messages)
