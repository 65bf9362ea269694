"""Helpers for the tests that handle a batch as a set and one at a time and compare
the two: commands as the matcher receives them, the messages its transactions emit,
and an index reset between the two ways."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pydantic

from shared.contract.inbound import InboundMessage
from shared.db.outbox import UnitOfWork
from shared.envelopes import Command
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from tests.support import matcher_of

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REPORTED = "2026-03-01T10:00:00+01:00"
_INBOUND: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(InboundMessage)


def command(partner: str, body: dict[str, Any], message_id: str | None = None) -> Command:
    return Command(
        partner_id=partner,
        message_id=message_id or str(uuid.uuid4()),
        seen_before=False,
        message=_INBOUND.validate_python(body),
    )


@contextlib.asynccontextmanager
async def recording(runtime: Runtime, sent: list[OutboundMessage]) -> AsyncIterator[None]:
    """Record every message the matcher's transactions emit."""
    real = runtime.outbox.unit_of_work

    @contextlib.asynccontextmanager
    async def recording() -> AsyncIterator[UnitOfWork]:
        async with real() as uow:
            yield uow
            sent.extend(uow.messages)

    runtime.outbox.unit_of_work = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        runtime.outbox.unit_of_work = real  # type: ignore[method-assign]


async def reset_index(db: asyncpg.Connection[Any]) -> None:
    await db.execute(
        """TRUNCATE youth, melding, match_group, match_member, inbox, outbox, audit_log,
                    stats_fact, melding_ref_used, family_facts, family_lookup, family_match,
                    coordinator_arrival, coordinator_followup
                    RESTART IDENTITY"""
    )


async def handled(
    runtime: Runtime,
    db: asyncpg.Connection[Any],
    seed: Sequence[Command],
    commands: Sequence[Command],
    *,
    together: bool,
) -> list[OutboundMessage]:
    """On a reset index, `seed` handled one at a time, then `commands` as one batch
    (together) or one at a time in the order given: the messages `commands` emitted."""
    handler = matcher_of(runtime, clock=lambda: NOW)
    await reset_index(db)
    for seeded in seed:
        await handler._run([seeded])
    sent: list[OutboundMessage] = []
    async with recording(runtime, sent):
        if together:
            await handler._run(list(commands))
        else:
            for one in commands:
                await handler._run([one])
    return sent
