"""What the broker itself must refuse a partner, with the permissions the docs prescribe
(`shared.amqp.management.partner_permissions`). The index's own refusal (another
partner's melding_ref is `unknown_melding`) is part of the workload."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from chaos.environment import Environment
from shared.amqp.nodes import first_node
from shared.amqp.topology import INBOUND_EXCHANGE, OUTBOUND_EXCHANGE, partner_queue


@dataclass(frozen=True)
class Probe:
    name: str
    ok: bool
    detail: str


async def _expect_refusal(
    url: str, what: Callable[[AbstractChannel], Awaitable[object]], expected: tuple[str, ...]
) -> tuple[bool, str]:
    connection = await aio_pika.connect(first_node(url), timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await asyncio.wait_for(what(channel), 10)
            # Some refusals close the channel asynchronously: give it a moment.
            await asyncio.sleep(0.5)
            await asyncio.wait_for(channel.declare_exchange(INBOUND_EXCHANGE, passive=True), 5)
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            return any(e in text for e in expected), text[:300]
        return False, "the broker allowed it"
    finally:
        await connection.close()


async def probe_all(env: Environment) -> list[Probe]:
    reporters = [p for p in env.region.partner if "reporter" in p.role_names]
    a, b = reporters[0], reporters[1]
    url_a = env.partner_url(a.id)
    refused = ("ACCESS_REFUSED", "403", "AccessRefused")
    probes: list[Probe] = []

    async def spoof(channel: AbstractChannel) -> None:
        exchange = await channel.get_exchange(INBOUND_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(b"{}", message_id="spoof-1", user_id=b.broker_user),
            routing_key="melding.register",
        )

    ok, detail = await _expect_refusal(url_a, spoof, ("PRECONDITION_FAILED", "406", "user_id"))
    probes.append(Probe(f"{a.id} publishes with user_id of {b.id}", ok, detail))

    async def read_other(channel: AbstractChannel) -> None:
        queue = await channel.get_queue(partner_queue(b.id), ensure=False)
        await queue.get(no_ack=False, fail=False)

    ok, detail = await _expect_refusal(url_a, read_other, refused)
    probes.append(Probe(f"{a.id} reads partner.{b.id}", ok, detail))

    async def ignore(_: AbstractIncomingMessage) -> None:
        return None  # the broker must refuse the consume before any message comes

    async def consume_other(channel: AbstractChannel) -> None:
        queue = await channel.get_queue(partner_queue(b.id), ensure=False)
        await queue.consume(ignore)

    ok, detail = await _expect_refusal(url_a, consume_other, refused)
    probes.append(Probe(f"{a.id} consumes partner.{b.id}", ok, detail))

    async def publish_outbound(channel: AbstractChannel) -> None:
        exchange = await channel.get_exchange(OUTBOUND_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(b'{"type":"receipt"}', user_id=a.broker_user), routing_key=b.id
        )

    ok, detail = await _expect_refusal(url_a, publish_outbound, refused)
    probes.append(Probe(f"{a.id} publishes to vi.outbound (as the index)", ok, detail))

    async def declare(channel: AbstractChannel) -> None:
        await channel.declare_queue(f"sneaky-{a.id}", durable=True)

    ok, detail = await _expect_refusal(url_a, declare, refused)
    probes.append(Probe(f"{a.id} declares a queue", ok, detail))

    async def read_work_queue(channel: AbstractChannel) -> None:
        queue = await channel.get_queue("vi.rejected", ensure=False)
        await queue.get(no_ack=False, fail=False)

    ok, detail = await _expect_refusal(url_a, read_work_queue, refused)
    probes.append(Probe(f"{a.id} reads vi.rejected", ok, detail))
    return probes
