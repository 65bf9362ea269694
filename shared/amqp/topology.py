"""Names and declarations of every exchange and queue.

Partner-facing names are fixed by the contract. Internal work queues are quorum
queues; each has delay queues for retries (fixed TTL, dead-lettering back to the work
queue) and a parked queue for messages that exhausted their retries. The quorum
`x-delivery-limit` with at-least-once dead-lettering into the parked queue is the
backstop against crash loops, not the retry mechanism.

Every work queue has a bulk twin (`<queue>.bulk`, see `shared/lanes.py`): onboarding
loads and the traffic of a partner beyond its fair share travel there, and each service
serves it only with capacity left over from the live queue. Partner messages reach
ingest through `vi.inbound.lanes`, which sends `onboard.#` to `vi.ingest.bulk`; every
other routing key, known or not, falls through its alternate exchange to `vi.ingest`,
so an unknown key is still answered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, ExchangeType

INBOUND_EXCHANGE = "vi.inbound"
OUTBOUND_EXCHANGE = "vi.outbound"
INTERNAL_EXCHANGE = "vi.internal"
REJECTED_QUEUE = "vi.rejected"

# Behind vi.inbound: sorts partner messages into the ingest lanes (see above).
INBOUND_LANES_EXCHANGE = "vi.inbound.lanes"
INBOUND_LIVE_EXCHANGE = "vi.inbound.live"
ONBOARD_PATTERN = "onboard.#"

INGEST_QUEUE = "vi.ingest"
# Ingest's first pass packs the partner messages within their fair share to here, a
# live queue, unvalidated (`services/ingest/lanes.py`).
ADMITTED_QUEUE = "vi.ingest.admitted"
MATCHER_QUEUE = "vi.matcher"
NOTIFIER_QUEUE = "vi.notifier"
EMAIL_QUEUE = "vi.email"

# Internal routing keys on vi.internal, one per work queue.
ADMITTED_KEY = "ingest.admitted"
MATCHER_KEY = "matcher"
NOTIFIER_KEY = "notifier"
EMAIL_KEY = "email"

BULK_SUFFIX = ".bulk"


def bulk(name: str) -> str:
    """The bulk twin of a work queue or internal routing key."""
    return name + BULK_SUFFIX


WORK_QUEUES: dict[str, tuple[str, str]] = {
    INGEST_QUEUE: (INBOUND_LIVE_EXCHANGE, ""),
    ADMITTED_QUEUE: (INTERNAL_EXCHANGE, ADMITTED_KEY),
    MATCHER_QUEUE: (INTERNAL_EXCHANGE, MATCHER_KEY),
    NOTIFIER_QUEUE: (INTERNAL_EXCHANGE, NOTIFIER_KEY),
    EMAIL_QUEUE: (INTERNAL_EXCHANGE, EMAIL_KEY),
    bulk(INGEST_QUEUE): (INBOUND_LANES_EXCHANGE, ONBOARD_PATTERN),
    bulk(MATCHER_QUEUE): (INTERNAL_EXCHANGE, bulk(MATCHER_KEY)),
    bulk(NOTIFIER_QUEUE): (INTERNAL_EXCHANGE, bulk(NOTIFIER_KEY)),
    bulk(EMAIL_QUEUE): (INTERNAL_EXCHANGE, bulk(EMAIL_KEY)),
}


def partner_queue(partner_id: str) -> str:
    return f"partner.{partner_id}"


def parked_queue(work_queue: str) -> str:
    return f"{work_queue}.parked"


def retry_queue(work_queue: str, delay_ms: int) -> str:
    return f"{work_queue}.retry.{delay_ms}ms"


def _quorum(**extra: Any) -> dict[str, Any]:
    return {"x-queue-type": "quorum", **extra}


def _dead_letter_to(queue: str) -> dict[str, Any]:
    # At-least-once dead-lettering needs reject-publish overflow; without it a full
    # or unreachable target could drop the message.
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_work_queue(
    channel: AbstractChannel,
    name: str,
    *,
    retry_delays_ms: Iterable[int],
    delivery_limit: int,
) -> None:
    await channel.declare_queue(parked_queue(name), durable=True, arguments=_quorum())
    await channel.declare_queue(
        name,
        durable=True,
        arguments=_quorum(
            **{"x-delivery-limit": delivery_limit}, **_dead_letter_to(parked_queue(name))
        ),
    )
    for delay in retry_delays_ms:
        await channel.declare_queue(
            retry_queue(name, delay),
            durable=True,
            arguments=_quorum(**{"x-message-ttl": delay}, **_dead_letter_to(name)),
        )


async def declare_core(
    channel: AbstractChannel, *, retry_delays_ms: Iterable[int], delivery_limit: int
) -> None:
    """Everything the system needs except the partner mailboxes. Idempotent."""
    delays = list(retry_delays_ms)
    exchanges = {
        INBOUND_EXCHANGE: ExchangeType.TOPIC,
        OUTBOUND_EXCHANGE: ExchangeType.DIRECT,
        INTERNAL_EXCHANGE: ExchangeType.DIRECT,
    }
    declared = {
        name: await channel.declare_exchange(name, kind, durable=True)
        for name, kind in exchanges.items()
    }
    declared |= await _declare_inbound_lanes(channel)
    await channel.declare_queue(REJECTED_QUEUE, durable=True, arguments=_quorum())
    for queue_name, (exchange, key) in WORK_QUEUES.items():
        await declare_work_queue(
            channel, queue_name, retry_delays_ms=delays, delivery_limit=delivery_limit
        )
        queue = await channel.get_queue(queue_name, ensure=False)
        await queue.bind(declared[exchange], routing_key=key)
    # Partner messages flow into the lanes only once both ingest queues are bound.
    await declared[INBOUND_LANES_EXCHANGE].bind(declared[INBOUND_EXCHANGE], routing_key="#")
    # Before the lanes, vi.ingest was bound to vi.inbound directly, which would also
    # bring it the onboarding keys. Removed only once the lanes route, so no message
    # is dropped in between (the broker routes to a queue once, whatever the paths).
    ingest = await channel.get_queue(INGEST_QUEUE, ensure=False)
    await ingest.unbind(declared[INBOUND_EXCHANGE], routing_key="#")


async def _declare_inbound_lanes(
    channel: AbstractChannel,
) -> dict[str, aio_pika.abc.AbstractExchange]:
    """vi.inbound.lanes (topic: onboarding keys to the bulk lane) and, for every key
    no binding there takes, its alternate exchange vi.inbound.live (to vi.ingest)."""
    live = await channel.declare_exchange(INBOUND_LIVE_EXCHANGE, ExchangeType.FANOUT, durable=True)
    lanes = await channel.declare_exchange(
        INBOUND_LANES_EXCHANGE,
        ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": INBOUND_LIVE_EXCHANGE},
    )
    return {INBOUND_LIVE_EXCHANGE: live, INBOUND_LANES_EXCHANGE: lanes}


async def declare_partner_queues(channel: AbstractChannel, partner_ids: Iterable[str]) -> None:
    outbound = await channel.declare_exchange(
        OUTBOUND_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    for pid in partner_ids:
        queue = await channel.declare_queue(partner_queue(pid), durable=True, arguments=_quorum())
        await queue.bind(outbound, routing_key=pid)
