"""Test support: an isolated region on the real RabbitMQ and PostgreSQL, the services
running in-process against it, and partner clients that log in as partners do."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from shared.amqp.topology import INBOUND_EXCHANGE, partner_queue
from shared.region.model import RegionConfig, parse_region
from shared.settings import Settings

PARTNER_PASSWORD = "test-partner-secret"


def amqp_url(base: str, *, user: str, password: str, vhost: str) -> str:
    parts = urlsplit(base)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(vhost, safe="")))


def region_document(user_prefix: str, **rules: Any) -> dict[str, Any]:
    """A small region: three municipalities, partners of several sectors, a register."""
    partners = [
        ("school", "Basisschool De Regenboog", "onderwijs", ["reporter"]),
        ("jeugdteam", "Jeugdteam Noord", "jeugdhulp", ["reporter"]),
        ("jgz", "GGD Jeugdgezondheidszorg", "jgz", ["reporter"]),
        ("huisarts", "Huisartsenpraktijk West", "zorg", ["reporter"]),
        ("brp", "Basisregistratie Personen", "gemeente", ["population_register"]),
    ]
    return {
        "region": {"name": "Testregio", "regie_deadline_days": 14, "inform_deadline_days": 14, **rules},
        "municipality": [
            {"code": "0363", "name": "Amsterdam", "coordinator_email": "regie@amsterdam.example"},
            {"code": "0599", "name": "Rotterdam", "coordinator_email": "regie@rotterdam.example"},
            {"code": "0344", "name": "Utrecht", "coordinator_email": "regie@utrecht.example"},
        ],
        "partner": [
            {"id": pid, "broker_user": f"{user_prefix}-{pid}", "name": name, "sector": sector, "roles": roles}
            for pid, name, sector, roles in partners
        ],
    }


@dataclass
class Received:
    body: dict[str, Any]
    message_id: str | None
    correlation_id: str | None
    raw: AbstractIncomingMessage


@dataclass
class PartnerClient:
    """A partner's system: its own broker login, publishing with user_id set."""

    partner_id: str
    broker_user: str
    url: str
    connection: AbstractRobustConnection | None = None
    _channel: Any = None
    _inbox: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)

    async def start(self) -> None:
        self.connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": f"test-partner-{self.partner_id}"}
        )
        self._channel = await self.connection.channel(publisher_confirms=True)
        queue = await self._channel.get_queue(partner_queue(self.partner_id), ensure=False)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            await self._inbox.put(
                Received(json.loads(message.body), message.message_id, message.correlation_id, message)
            )

        await queue.consume(on_message)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def send(
        self,
        body: dict[str, Any] | bytes,
        *,
        message_id: str | None = "auto",
        routing_key: str | None = None,
        user_id: str | None = "self",
    ) -> str | None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        key = routing_key or (body.get("type", "") if isinstance(body, dict) else "")
        mid = str(uuid.uuid4()) if message_id == "auto" else message_id
        exchange = await self._channel.get_exchange(INBOUND_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                raw,
                message_id=mid,
                user_id=self.broker_user if user_id == "self" else user_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=key,
        )
        return mid

    async def next(self, timeout: float = 10.0) -> Received:
        return await asyncio.wait_for(self._inbox.get(), timeout)

    async def collect(self, count: int, timeout: float = 15.0) -> list[Received]:
        return [await self.next(timeout) for _ in range(count)]

    async def quiet(self, seconds: float = 0.5) -> list[Received]:
        """Whatever else arrives within `seconds` (expected: nothing)."""
        extra = []
        try:
            while True:
                extra.append(await asyncio.wait_for(self._inbox.get(), seconds))
        except TimeoutError:
            return extra

    async def receipt_for(self, message_id: str | None, timeout: float = 10.0) -> Received:
        while True:
            got = await self.next(timeout)
            if got.body.get("type") == "receipt" and got.body.get("in_reply_to") == message_id:
                return got


@dataclass
class RegionUnderTest:
    settings: Settings
    vhost: str
    database: str
    region: RegionConfig
    user_prefix: str
    mail_dir: Path

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].broker_user
        return amqp_url(self.settings.amqp_url, user=user, password=PARTNER_PASSWORD, vhost=self.vhost)

    def with_settings(self, **changes: Any) -> RegionUnderTest:
        return replace(self, settings=replace(self.settings, **changes))


def register_body(
    ref: str,
    *,
    bsn: str | None = None,
    birth_date: str = "2014-05-01",
    municipality: str = "0363",
    reporter: str = "J. de Vries",
    email: str = "j.devries@school.example",
    reported_at: str | None = None,
    **youth: Any,
) -> dict[str, Any]:
    youth_doc: dict[str, Any] = {"birth_date": birth_date, "municipality": municipality, **youth}
    if bsn is not None:
        youth_doc["bsn"] = bsn
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": youth_doc,
        "reporter": {"name": reporter, "email": email, "phone": "+31201234567"},
        "reported_at": reported_at or datetime.now(UTC).isoformat(),
    }


def valid_bsn(seed: int) -> str:
    """A BSN that passes the 11-proef, distinct per seed."""
    base = f"{seed % 10**8:08d}"
    weights = [9, 8, 7, 6, 5, 4, 3, 2]
    total = sum(int(d) * w for d, w in zip(base, weights, strict=True))
    for last in range(10):
        if (total - last) % 11 == 0 and base + str(last) != "000000000":
            return base + str(last)
    return valid_bsn(seed + 1)  # no check digit fits this base


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
