"""The portal on the bus as a sender: inbound messages for a portal partner, published
with the portal's own broker login as `user_id` and the §9 headers.

Each message is written, in the transaction of the request that asked for it, twice:
to `portal_message`, the portal's record of what it sent and what came back, and to the
shared outbox (`shared.db.outbox`) as the portal's row, published after commit. The
portal's own relay publishes rows that a crashed or disconnected replica left behind,
with the same `message_id`, so a message is never lost and a second delivery gets a
`duplicate` receipt, never a second effect.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from services.portal import metrics
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INBOUND_EXCHANGE
from shared.contract.portal import ACTOR_HEADER, COORDINATOR_HEADER, ON_BEHALF_OF_HEADER
from shared.db import outbox
from shared.db.outbox import Outbox, PendingRow
from shared.db.pool import Conn
from shared.logs import describe_error, get_logger
from shared.outgoing import OutboundMessage

log = get_logger(__name__)


# The outbox's sender name for the portal's rows (see shared.db.outbox).
SENDER: Final = "portal"
RELAY_GRACE_SECONDS: Final = 5.0


@dataclass(frozen=True)
class Request:
    """One inbound message the portal sends for a partner."""

    message_id: uuid.UUID
    partner_id: str
    actor: uuid.UUID
    body: dict[str, Any]
    # Set for a coordinator's request: sent with x-vi-coordinator instead of
    # x-vi-on-behalf-of (contract §9, regie.assign).
    coordinator: str | None = None

    @property
    def routing_key(self) -> str:
        return str(self.body["type"])

    def outbound(self) -> OutboundMessage:
        """The message to publish: no AMQP type, as a partner's own system sends it."""
        speaks_for = (
            {COORDINATOR_HEADER: self.coordinator}
            if self.coordinator is not None
            else {ON_BEHALF_OF_HEADER: self.partner_id}
        )
        return OutboundMessage(
            INBOUND_EXCHANGE,
            self.routing_key,
            json.dumps(self.body).encode(),
            None,
            self.message_id,
            headers={**speaks_for, ACTOR_HEADER: str(self.actor)},
        )


def new_request(partner_id: str, actor: uuid.UUID, body: dict[str, Any]) -> Request:
    return Request(uuid.uuid4(), partner_id, actor, body)


def coordinator_request(
    mailbox: str, coordinator: str, actor: uuid.UUID, body: dict[str, Any]
) -> Request:
    """A coordinator's request; its receipt comes back in `mailbox` (partner.portal)."""
    return Request(uuid.uuid4(), mailbox, actor, body, coordinator)


async def record(conn: Conn, request: Request) -> None:
    """Write the request in the caller's transaction; publish it after commit."""
    metrics.REQUESTS.labels(request.routing_key).inc()
    message = request.outbound()
    await conn.execute(
        """INSERT INTO portal_message (message_id, partner_id, actor, routing_key,
                  melding_ref, body, coordinator)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request.message_id,
        request.partner_id,
        request.actor,
        request.routing_key,
        request.body.get("melding_ref"),
        message.body,
        request.coordinator,
    )
    await outbox.write(conn, [message], sender=SENDER)


async def forget_answered(conn: Conn, message_id: uuid.UUID) -> None:
    """An answer came, so the request was published: drop its outbox row if one is
    still waiting (its publish was not confirmed to us), so it is not sent again."""
    await outbox.discard(conn, [message_id], sender=SENDER)


class Gateway:
    def __init__(self, pool: asyncpg.Pool[Any], broker_user: str) -> None:
        self._pool = pool
        self.broker_user = broker_user
        self.outbox = Outbox(
            pool, None, grace_seconds=RELAY_GRACE_SECONDS, sender=SENDER, user_id=broker_user
        )

    @property
    def publisher(self) -> Publisher | None:
        """Set while the portal's broker connection is up (see services.portal.bus)."""
        return self.outbox.publisher

    @publisher.setter
    def publisher(self, publisher: Publisher | None) -> None:
        self.outbox.publisher = publisher

    async def publish(self, request: Request) -> bool:
        """Publish a recorded request now; False (logged) when the broker is away: the
        relay sends it later."""
        row_id = await self._pool.fetchval(
            "SELECT id FROM outbox WHERE sender = $1 AND message_id = $2",
            SENDER,
            request.message_id,
        )
        if row_id is None:
            return True  # the relay was first
        return await self.outbox.dispatch([PendingRow(row_id, request.outbound())])

    async def relay_once(self, grace_seconds: float = RELAY_GRACE_SECONDS, batch: int = 100) -> int:
        """Publish requests left unpublished for longer than the grace period."""
        return await self.outbox.relay_once(batch=batch, grace_seconds=grace_seconds)

    async def relay_forever(self, interval: float = 2.0) -> None:
        await asyncio.gather(self.outbox.relay_forever(interval), self._count_unpublished(interval))

    async def _count_unpublished(self, interval: float) -> None:
        while True:
            try:
                backlog, _ = await self.outbox.backlog_and_lag()
                metrics.UNPUBLISHED.set(backlog)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("portal_unpublished_count_failed", error=describe_error(exc, 300))
            await asyncio.sleep(interval)
