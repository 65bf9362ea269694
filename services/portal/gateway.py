"""The portal on the bus as a sender: inbound messages for a portal partner, published
with the portal's own broker login as `user_id` and the §9 headers.

Each message is first a row in `portal_message` (written in the transaction of the
request that asked for it), published after commit; a relay publishes rows that a
crashed or disconnected replica left behind, with the same `message_id`, so a message
is never lost and a second delivery gets a `duplicate` receipt, never a second effect.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.portal import metrics
from shared.amqp.publisher import Outgoing, Publisher
from shared.amqp.topology import INBOUND_EXCHANGE
from shared.contract.portal import ACTOR_HEADER, COORDINATOR_HEADER, ON_BEHALF_OF_HEADER
from shared.db.pool import Conn
from shared.logs import describe_error, get_logger

log = get_logger(__name__)


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
    await conn.execute(
        """INSERT INTO portal_message (message_id, partner_id, actor, routing_key,
                  melding_ref, body, coordinator)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request.message_id,
        request.partner_id,
        request.actor,
        request.routing_key,
        request.body.get("melding_ref"),
        json.dumps(request.body).encode(),
        request.coordinator,
    )


class Gateway:
    def __init__(self, pool: asyncpg.Pool[Any], broker_user: str) -> None:
        self._pool = pool
        self.broker_user = broker_user
        # Set while the portal's broker connection is up (see services.portal.bus).
        self.publisher: Publisher | None = None

    def _outgoing(
        self,
        message_id: uuid.UUID,
        partner_id: str,
        actor: str,
        body: bytes,
        key: str,
        coordinator: str | None = None,
    ) -> Outgoing:
        speaks_for = (
            {COORDINATOR_HEADER: coordinator}
            if coordinator is not None
            else {ON_BEHALF_OF_HEADER: partner_id}
        )
        return Outgoing(
            INBOUND_EXCHANGE,
            key,
            body,
            message_id=str(message_id),
            user_id=self.broker_user,
            headers={**speaks_for, ACTOR_HEADER: actor},
        )

    async def publish(self, request: Request) -> bool:
        """Publish a recorded request now; False (logged) when the broker is away: the
        relay sends it later."""
        if self.publisher is None:
            log.warning("portal_publish_deferred", error="not connected to the broker")
            return False
        try:
            await self.publisher.publish_many(
                [
                    self._outgoing(
                        request.message_id,
                        request.partner_id,
                        str(request.actor),
                        json.dumps(request.body).encode(),
                        request.routing_key,
                        request.coordinator,
                    )
                ]
            )
        except Exception as exc:
            log.warning("portal_publish_deferred", error=describe_error(exc, 300))
            return False
        await self._pool.execute(
            "UPDATE portal_message SET published_at = now() WHERE message_id = $1",
            request.message_id,
        )
        return True

    async def relay_once(self, grace_seconds: float = 5.0, batch: int = 100) -> int:
        """Publish requests left unpublished for longer than the grace period."""
        publisher = self.publisher
        if publisher is None:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT message_id, partner_id, actor, routing_key, body, coordinator
                   FROM portal_message
                   WHERE published_at IS NULL
                     AND created_at <= now() - make_interval(secs => $1)
                   ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
                grace_seconds,
                batch,
            )
            if not rows:
                return 0
            await publisher.publish_many(
                [
                    self._outgoing(
                        r["message_id"],
                        r["partner_id"],
                        str(r["actor"]),
                        bytes(r["body"]),
                        r["routing_key"],
                        r["coordinator"],
                    )
                    for r in rows
                ]
            )
            await conn.execute(
                "UPDATE portal_message SET published_at = now() WHERE message_id = ANY($1)",
                [r["message_id"] for r in rows],
            )
            return len(rows)

    async def relay_forever(self, interval: float = 2.0) -> None:
        while True:
            try:
                while await self.relay_once() > 0:
                    pass
                metrics.UNPUBLISHED.set(
                    await self._pool.fetchval(
                        "SELECT count(*) FROM portal_message WHERE published_at IS NULL"
                    )
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("portal_relay_failed", error=describe_error(exc, 300))
            await asyncio.sleep(interval)
