"""Helpers for the lifecycle, retention and informing tests: the pipeline with a
settable matcher clock, a retention sweep with an injected `now`, partner mailboxes
that keep what a test did not ask for yet, and the rows stored on a youth."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from typing import Any

import asyncpg

from services.matcher.handler import command_codec
from services.retention.sweep import PAGE, Sweep, SweepReport
from shared.amqp.topology import MATCHER_QUEUE
from shared.lanes import Lane
from shared.partner_client import PartnerClient, Received
from shared.region.model import RegionConfig
from shared.service import Runtime
from tests.conftest import System
from tests.support import (
    RegionUnderTest,
    eventually,
    mails,
    matcher_of,
    no_consumers,
    register_body,
)


def at(text: str) -> datetime:
    """An aware timestamp from ISO 8601 text with an offset."""
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    return parsed


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Lifecycle:
    """The pipeline (matcher on `clock`) plus a runtime to run sweeps from."""

    region: RegionUnderTest
    clock: FakeClock
    retention: Runtime

    async def sweep(
        self, now: datetime, *, page: int = PAGE, region: RegionConfig | None = None
    ) -> SweepReport:
        config = region or await self.retention.region.get()
        rt = self.retention
        return await Sweep(rt.pool, rt.outbox, config, rt.pseudonyms, page=page).run(now)


async def start_lifecycle(system: System, clock: FakeClock | None = None) -> Lifecycle:
    """Ingest, a matcher that reads the time from `clock`, the notifier, and a runtime
    for sweeps (no consumers; its outbox relay runs)."""
    matcher_clock = clock or FakeClock()

    async def matcher(runtime: Runtime) -> None:
        runtime.consume(
            MATCHER_QUEUE,
            command_codec(Lane.LIVE),
            matcher_of(runtime, clock=matcher_clock),
            batch_size=1,
        )

    await system.start("ingest")
    await system.start("matcher", setup=matcher)
    await system.start("notifier")
    retention = await system.start("retention", setup=no_consumers)
    return Lifecycle(system.region, matcher_clock, retention)


def _matches(message: Received, message_type: str, fields: dict[str, Any]) -> bool:
    return message.type == message_type and all(message.body.get(k) == v for k, v in fields.items())


class Box:
    """A partner's mailbox in a test: `take` waits for one message of a kind and keeps
    the others, so `rest` can show everything that was not asked for."""

    def __init__(self, client: PartnerClient) -> None:
        self.client = client
        self.partner_id = client.partner_id
        self.backlog: list[Received] = []

    async def send(self, body: dict[str, Any]) -> str:
        mid = await self.client.send(body)
        assert mid is not None
        return mid

    async def take(self, message_type: str, timeout: float = 10.0, **fields: Any) -> Received:
        for i, message in enumerate(self.backlog):
            if _matches(message, message_type, fields):
                return self.backlog.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.client.next(max(0.01, deadline - loop.time()))
            if _matches(message, message_type, fields):
                return message
            self.backlog.append(message)

    async def call(self, body: dict[str, Any]) -> Received:
        """Send a message and return its receipt."""
        mid = await self.send(body)
        return await self.take("receipt", in_reply_to=mid)

    async def accepted(self, body: dict[str, Any]) -> Received:
        receipt = await self.call(body)
        assert receipt.body["status"] == "accepted", receipt.body
        return receipt

    async def rejected(self, body: dict[str, Any]) -> list[str]:
        """Send a message that must be rejected; returns its error codes."""
        receipt = await self.call(body)
        assert receipt.body["status"] == "rejected", receipt.body
        return [e["code"] for e in receipt.body["errors"]]

    async def rest(self, seconds: float = 0.4, *, ignore: tuple[str, ...] = ()) -> list[Received]:
        """Everything not taken yet, plus whatever arrives within `seconds`."""
        got = self.backlog + await self.client.quiet(seconds)
        self.backlog = []
        return [m for m in got if m.type not in ignore]


async def rest_of_all(
    *some: Box, seconds: float = 0.4, ignore: tuple[str, ...] = ()
) -> dict[str, list[Received]]:
    """`rest` of several mailboxes at once (one wait, not one per box)."""
    got = await asyncio.gather(*(b.rest(seconds, ignore=ignore) for b in some))
    return {b.partner_id: messages for b, messages in zip(some, got, strict=True)}


def boxes(partners: dict[str, PartnerClient]) -> dict[str, Box]:
    return {pid: Box(client) for pid, client in partners.items()}


def register(
    ref: str,
    bsn: str,
    *,
    reported_at: str,
    birth_date: str = "2014-05-01",
    email: str | None = None,
    municipality: str = "0363",
) -> dict[str, Any]:
    return register_body(
        ref,
        bsn=bsn,
        birth_date=birth_date,
        reported_at=reported_at,
        municipality=municipality,
        email=email or f"{ref.lower()}@reporter.example",
    )


def withdraw(ref: str, reason: str) -> dict[str, Any]:
    return {"type": "melding.withdraw", "melding_ref": ref, "reason": reason}


def informed(ref: str, who: list[str], on: str) -> dict[str, Any]:
    return {"type": "melding.informed", "melding_ref": ref, "informed": who, "informed_on": on}


def deferred(ref: str, reason: str) -> dict[str, Any]:
    return {"type": "melding.informed", "melding_ref": ref, "deferred_reason": reason}


async def youth_id_of(db: asyncpg.Connection[Any], partner_id: str, ref: str) -> int:
    youth_id = await db.fetchval(
        "SELECT youth_id FROM melding WHERE partner_id = $1 AND melding_ref = $2", partner_id, ref
    )
    assert youth_id is not None, f"no melding {partner_id}/{ref}"
    return int(youth_id)


async def rows_on_youth(
    db: asyncpg.Connection[Any], youth_id: int, melding_ids: list[int]
) -> dict[str, int]:
    """How many rows each table holds for the youth (and for its former meldingen)."""
    return {
        "youth": await db.fetchval("SELECT count(*) FROM youth WHERE id = $1", youth_id),
        "melding": await db.fetchval(
            "SELECT count(*) FROM melding WHERE youth_id = $1 OR id = ANY($2::bigint[])",
            youth_id,
            melding_ids,
        ),
        "match_group": await db.fetchval(
            "SELECT count(*) FROM match_group WHERE youth_id = $1", youth_id
        ),
        "match_member": await db.fetchval(
            "SELECT count(*) FROM match_member WHERE melding_id = ANY($1::bigint[])", melding_ids
        ),
    }


async def melding_ids_of(db: asyncpg.Connection[Any], youth_id: int) -> list[int]:
    return [r["id"] for r in await db.fetch("SELECT id FROM melding WHERE youth_id = $1", youth_id)]


async def melding_row(db: asyncpg.Connection[Any], partner_id: str, ref: str) -> asyncpg.Record:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT * FROM melding WHERE partner_id = $1 AND melding_ref = $2", partner_id, ref
    )
    assert row is not None, f"no melding {partner_id}/{ref}"
    return row


async def mails_to(region: RegionUnderTest, address: str, count: int) -> list[EmailMessage]:
    """Wait until `count` e-mails to `address` are there; return them."""

    async def arrived() -> bool:
        return len([m for m in mails(region) if m["To"] == address]) >= count

    await eventually(arrived)
    return [m for m in mails(region) if m["To"] == address]


def day(text: str) -> date:
    return date.fromisoformat(text)
