"""Going through a holding queue (parked queues, `vi.rejected`) without losing a
message and without spending its delivery budget.

A get followed by a give-back (nack with requeue, or closing the channel) counts as a
failed delivery on a quorum queue: it raises `x-delivery-count`, and where a delivery
limit applies (RabbitMQ 4.0 gives every quorum queue a default of 20) the message is
eventually dropped or dead-lettered. So a message that is only looked at is never given
back: a copy is published to the back of its own queue, confirmed, and only then is
the original acked. After one pass over the whole queue every message not taken is
there again, in its old order, as a fresh delivery. Should the original's ack be lost
after its copy was confirmed, the message is there twice; replaying it twice has no
second effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp.consuming import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    REPLAYED_HEADER,
    Delivery,
)
from shared.amqp.publisher import Publisher
from shared.outgoing import OutboundMessage

# Set by the broker on every delivery from a quorum queue; meaningless on a copy.
DELIVERY_COUNT_HEADER = "x-delivery-count"


@dataclass(frozen=True)
class HeldMessage:
    """A message from a holding queue, read the way the services read it."""

    delivery: Delivery

    @property
    def message(self) -> AbstractIncomingMessage:
        return self.delivery.message

    @property
    def headers(self) -> dict[str, Any]:
        return self.delivery.headers

    @property
    def message_id(self) -> str | None:
        return self.message.message_id

    @property
    def sender(self) -> str | None:
        """The broker login that published the original, as the broker checked it
        (`user_id`); None when the original had no `user_id`. The broker does not
        record the login of a connection that published without one."""
        return self.delivery.user_id

    @property
    def kind(self) -> str | None:
        """The routing key the sender used (e.g. `melding.register`)."""
        return self.delivery.routing_key or self.message.type

    def summary(self) -> dict[str, Any]:
        h = self.headers
        ts = self.message.timestamp
        return {
            "message_id": self.message_id,
            "type": self.kind,
            "sender": self.sender,
            "queue": h.get(QUEUE_HEADER),
            "attempts": h.get(ATTEMPT_HEADER),
            "error": h.get(ERROR_HEADER),
            "bytes": len(self.message.body),
            "published_at": ts.isoformat() if isinstance(ts, datetime) else None,
        }


# Decides about one message: True when it has been dealt with (replayed, purged) and
# may go, False to keep it in the queue.
Visit = Callable[[HeldMessage], Awaitable[bool]]
Progress = Callable[[int], None]


async def depth(connection: AbstractRobustConnection, queue_name: str) -> int:
    """Messages ready in the queue now."""
    async with connection.channel() as channel:
        declared = await channel.declare_queue(queue_name, passive=True)
        return declared.declaration_result.message_count or 0


async def pass_through(
    connection: AbstractRobustConnection,
    publisher: Publisher,
    queue_name: str,
    visit: Visit,
    *,
    service_user: str,
    progress: Progress | None = None,
) -> int:
    """Show every message now in the queue to `visit` once, in order; remove those it
    took and keep the others (see the module's docstring). Returns how many it saw."""
    seen = 0
    async with connection.channel() as channel:
        queue = await channel.declare_queue(queue_name, passive=True)
        # Only the messages there now: the kept copies queue up behind them.
        for _ in range(queue.declaration_result.message_count or 0):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            held = HeldMessage(Delivery(message, service_user))
            if not await visit(held):
                await publisher.publish(_kept(held, queue_name))
            await message.ack()
            seen += 1
            if progress is not None:
                progress(1)
    return seen


def _kept(held: HeldMessage, queue_name: str) -> OutboundMessage:
    return held.delivery.copy_for_runtime(queue_name, {}, drop=(DELIVERY_COUNT_HEADER,))


async def replay(publisher: Publisher, held: HeldMessage, *, work_queue: str) -> None:
    """Publish a held message to a work queue as a first attempt, marked as a replay so
    that an effect it already had is not repeated. The runtime's headers keep the
    original sender and routing key, which the services trust only on a message
    published with their own login."""
    copy = held.delivery.copy_for_runtime(
        work_queue,
        {REPLAYED_HEADER: 1},
        drop=(ATTEMPT_HEADER, ERROR_HEADER, QUEUE_HEADER, DELIVERY_COUNT_HEADER),
    )
    await publisher.publish(copy)
