"""Looking into a queue without losing anything: messages are fetched unacked and
given back when the channel closes, except those an operator chose to replay.

Only for queues without a delivery limit (parked queues, vi.rejected, partner
mailboxes): on a quorum work queue every give-back counts towards its limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp.consumer import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    QUEUE_HEADER,
    REPLAYED_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    Delivery,
)
from shared.amqp.publisher import Publisher


@dataclass(frozen=True)
class HeldMessage:
    message: AbstractIncomingMessage

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})

    def summary(self) -> dict[str, Any]:
        h = self.headers
        ts = self.message.timestamp
        return {
            "message_id": self.message.message_id,
            "type": h.get(ROUTING_KEY_HEADER) or self.message.type or self.message.routing_key,
            "partner_user": h.get(USER_ID_HEADER) or self.message.user_id,
            "queue": h.get(QUEUE_HEADER),
            "attempts": h.get(ATTEMPT_HEADER),
            "error": h.get(ERROR_HEADER),
            "bytes": len(self.message.body),
            "published_at": ts.isoformat() if isinstance(ts, datetime) else None,
        }


async def hold(
    connection: AbstractRobustConnection, queue_name: str, limit: int
) -> tuple[Any, list[HeldMessage]]:
    """Fetch up to `limit` messages unacked. Close the returned channel to give back
    every message not acked."""
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name, ensure=True)
    held: list[HeldMessage] = []
    while len(held) < limit:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            break
        held.append(HeldMessage(message))
    return channel, held


def oldest_age_seconds(held: list[HeldMessage]) -> float | None:
    stamps = [m.message.timestamp for m in held if isinstance(m.message.timestamp, datetime)]
    if not stamps:
        return None
    oldest = min(s if s.tzinfo else s.replace(tzinfo=UTC) for s in stamps)
    return (datetime.now(UTC) - oldest).total_seconds()


async def replay(
    publisher: Publisher, held: HeldMessage, *, work_queue: str, service_user: str
) -> None:
    """Put a parked message back on its work queue as a first attempt, marked as a
    replay so that an effect it already had is not repeated; then remove it from the
    parked queue."""
    delivery = Delivery(held.message, service_user)
    copy = delivery.copy_for_runtime(
        work_queue, {REPLAYED_HEADER: 1}, drop=(ATTEMPT_HEADER, ERROR_HEADER)
    )
    await publisher.publish_many([copy])
    await held.message.ack()
