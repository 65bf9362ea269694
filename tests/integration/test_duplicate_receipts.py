"""Exact `duplicate` receipts: every publish of a message_id is answered once, whether
its delivery is a first one or a broker redelivery after a crash (docs/reliability.md,
"Duplicate receipts")."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from shared.amqp.consuming import DELIVERIES, Delivery
from shared.amqp.topology import INGEST_QUEUE, INTERNAL_EXCHANGE, MATCHER_KEY, MATCHER_QUEUE
from shared.db import arrivals
from shared.db.arrivals import Arrival
from shared.envelopes import Command
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.service import Runtime
from tests.conftest import System
from tests.support import drain, eventually, ingest_of, queued_messages, register_body, valid_bsn


@dataclass
class IngestCrashingOnce:
    """An ingest that dies once, on the first delivery `when` picks: before it did
    anything (`after_handling` false: nothing recorded), or after it handled it (its
    outcome recorded and forwarded) but before the ack. Its channel is closed, as a
    process death or a broker restart does, so the broker delivers the message again
    (`redelivered`)."""

    when: Callable[[Delivery], bool]
    after_handling: bool
    seen: list[bool] = field(default_factory=list)  # `redelivered` of each delivery
    crashes: int = 0

    async def setup(self, runtime: Runtime) -> None:
        real = ingest_of(runtime)

        async def handler(deliveries: Sequence[Delivery]) -> None:
            (delivery,) = deliveries
            self.seen.append(bool(delivery.message.redelivered))
            crash = self.crashes == 0 and self.when(delivery)
            if crash:
                self.crashes += 1
            if not (crash and not self.after_handling):
                await real([delivery])
            if crash:
                await delivery.message.channel.close()  # its ack can no longer be sent

        runtime.consume(INGEST_QUEUE, DELIVERIES, handler, batch_size=1, on_acked=real.acked)


def _nth_publish(message_id: str, n: int) -> Callable[[Delivery], bool]:
    """The first delivery of the n-th publish of `message_id` (deliveries of earlier
    publishes were acked, so only a fresh one is not redelivered)."""
    count = 0

    def pick(delivery: Delivery) -> bool:
        nonlocal count
        if delivery.message_id != message_id or delivery.message.redelivered:
            return False
        count += 1
        return count == n

    return pick


async def _all_closed(db: asyncpg.Connection[Any]) -> bool:
    """Every arrival closed: the broker confirmed ingest's acks (call after an answer)."""
    return bool(await db.fetchval("SELECT count(*) = 0 FROM arrival"))


VALID = register_body("D-1", bsn=valid_bsn(701))
INVALID = register_body("D-1", bsn="123456789")  # fails the 11-proef: ingest answers it


@pytest.mark.parametrize("body", [VALID, INVALID], ids=["valid", "invalid"])
async def test_a_resend_that_arrives_as_a_redelivery_gets_duplicate(
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
    body: dict[str, Any],
) -> None:
    ingest = IngestCrashingOnce(_nth_publish("dup-1", 2), after_handling=False)
    await system.start("ingest", setup=ingest.setup)
    await system.start("matcher")
    school = partners["school"]
    await school.send(body, message_id="dup-1")
    first = await school.receipt_for("dup-1")
    assert first.body["status"] in {"accepted", "rejected"}
    await eventually(lambda: _all_closed(db))  # the broker confirmed ingest's ack

    # The partner sends it again; that publish's first handling dies before it is
    # recorded, so the copy comes as a redelivery.
    await school.send(body, message_id="dup-1")
    second = await school.receipt_for("dup-1")
    assert ingest.crashes == 1 and ingest.seen[-2:] == [False, True]
    assert second.body["status"] == "duplicate"
    assert second.message_id != first.message_id
    assert await school.quiet(1.0) == []
    assert await db.fetchval("SELECT count(*) FROM melding") == (1 if body is VALID else 0)
    assert await db.fetchval("SELECT count(*) FROM arrival_answered") == 2


@pytest.mark.parametrize("body", [VALID, INVALID], ids=["valid", "invalid"])
async def test_a_redelivered_original_keeps_its_one_receipt_and_never_gets_duplicate(
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
    body: dict[str, Any],
) -> None:
    ingest = IngestCrashingOnce(_nth_publish("orig-1", 1), after_handling=True)
    await system.start("ingest", setup=ingest.setup)
    await system.start("matcher")
    school = partners["school"]
    await school.send(body, message_id="orig-1")
    receipt = await school.receipt_for("orig-1")
    assert receipt.body["status"] in {"accepted", "rejected"}
    # The redelivery was bound to the publish's arrival: nothing more is said.
    await eventually(lambda: _all_closed(db))
    assert ingest.crashes == 1 and ingest.seen == [False, True]
    assert await school.quiet(1.0) == []
    assert str(await db.fetchval("SELECT receipt_id FROM inbox")) == receipt.message_id
    assert await db.fetchval("SELECT count(*) FROM arrival_answered") == 1
    # A later re-send is still a duplicate.
    await school.send(body, message_id="orig-1")
    assert (await school.receipt_for("orig-1")).body["status"] == "duplicate"


async def test_a_message_retried_after_its_forward_is_answered_once(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """Ingest forwarded a message and then failed (say, the database went away while
    it finished): the message goes to a retry queue and its delivery is acked, but its
    arrival stays open, so the retried copy is the same publish and gets no
    `duplicate`."""
    failures: list[str | None] = []

    async def setup(runtime: Runtime) -> None:
        real = ingest_of(runtime)

        async def handler(deliveries: Sequence[Delivery]) -> None:
            (delivery,) = deliveries
            await real([delivery])
            if not failures:
                failures.append(delivery.message_id)
                raise ConnectionError("database went away after the forward")

        runtime.consume(INGEST_QUEUE, DELIVERIES, handler, batch_size=1, on_acked=real.acked)

    await system.start("ingest", setup=setup)
    await system.start("matcher")
    school = partners["school"]
    await school.send(VALID, message_id="retried-1")
    receipt = await school.receipt_for("retried-1")
    assert receipt.body["status"] == "accepted"
    await eventually(lambda: _all_closed(db))  # the retried copy was handled and acked
    assert failures == ["retried-1"]
    assert await school.quiet(1.0) == []
    assert await db.fetchval("SELECT count(*) FROM arrival_answered") == 1
    assert await db.fetchval("SELECT count(*) FROM melding") == 1


async def test_a_command_forwarded_twice_is_answered_once_in_either_order(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """Ingest forwarded a command, died before its ack, and forwarded it again from the
    redelivery. Two matcher replicas can handle the copies in either order; the copy
    from the redelivery coming first once made the original look re-sent (`accepted`
    plus `duplicate` for one publish)."""
    ingest = IngestCrashingOnce(_nth_publish("twice-1", 1), after_handling=True)
    runtime = await system.start("ingest", setup=ingest.setup)
    school = partners["school"]
    await school.send(VALID, message_id="twice-1")

    async def both_forwarded() -> bool:
        return await queued_messages(runtime, MATCHER_QUEUE) == 2

    await eventually(both_forwarded)
    copies = [Command.model_validate_json(m.body) for m in await drain(runtime, MATCHER_QUEUE)]
    assert [c.seen_before for c in copies] == [False, True]
    assert copies[0].arrival_id is not None and copies[0].arrival_id == copies[1].arrival_id
    for command in reversed(copies):  # the redelivery's copy first
        await runtime.publisher.publish(
            OutboundMessage(
                INTERNAL_EXCHANGE,
                MATCHER_KEY,
                command.model_dump_json().encode(),
                message_type=command.message.type,
                message_id=command.message_id,
            ),
        )
    await system.start("matcher")
    receipt = await school.receipt_for("twice-1")
    assert receipt.body["status"] == "accepted"
    assert await school.quiet(1.5) == []
    assert await db.fetchval("SELECT count(*) FROM melding") == 1


async def test_arrivals_bind_a_redelivery_to_the_publish_that_may_still_be_delivered(
    system: System, db: asyncpg.Connection[Any]
) -> None:
    runtime = await system.start("ingest")
    async with runtime.pool.acquire() as conn:
        [a1] = await arrivals.record(conn, [Arrival("school", "m-1", seen_before=False)])
        # A redelivery is bound to the open arrival (its ack not confirmed yet) ...
        assert await arrivals.record(conn, [Arrival("school", "m-1", seen_before=True)]) == [a1]
        # ... a fresh publish never is ...
        [a2] = await arrivals.record(conn, [Arrival("school", "m-1", seen_before=False)])
        assert a2 != a1
        await arrivals.close(conn, [a1, a2])
        # ... and with every publish acknowledged, a redelivery is another publish.
        [a3] = await arrivals.record(conn, [Arrival("school", "m-1", seen_before=True)])
        assert a3 not in {a1, a2}
        # What this process bound a delivery to before is kept.
        known = [Arrival("school", "m-1", seen_before=True, known=a1)]
        assert await arrivals.record(conn, known) == [a1]
        assert await arrivals.record(conn, [Arrival("jeugdteam", "m-1", seen_before=True)]) != [a3]

    # Each arrival is answered once, also by two transactions at the same moment.
    async def answer_in_own_transaction() -> set[uuid.UUID]:
        async with runtime.pool.acquire() as conn, conn.transaction():
            got = await arrivals.answer(conn, [a3])
            await asyncio.sleep(0.2)  # hold the row while the other one tries
            return got

    results = await asyncio.gather(answer_in_own_transaction(), answer_in_own_transaction())
    assert sorted(len(r) for r in results) == [0, 1]
    async with runtime.pool.acquire() as conn:
        assert await arrivals.answer(conn, [a1, a3]) == {a1}
