"""Nothing lost, no effect twice: redelivery, retries and parking, the outbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
import asyncpg
import pytest

from shared.amqp.consuming import ATTEMPT_HEADER, DELIVERIES, ERROR_HEADER, Delivery
from shared.amqp.publisher import Publisher
from shared.amqp.topology import MATCHER_QUEUE, OUTBOUND_EXCHANGE, parked_queue
from shared.db import migrate
from shared.db.outbox import Outbox, write
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.service import Runtime
from tests.conftest import System
from tests.support import (
    MatcherCrashingOnce,
    RegionUnderTest,
    eventually,
    register_body,
    valid_bsn,
)


async def test_redelivery_after_commit_has_one_effect_and_one_receipt(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    matcher = MatcherCrashingOnce()
    await system.start("ingest")
    await system.start("matcher", setup=matcher.setup)
    school = partners["school"]
    mid = await school.send(register_body("R-1", bsn=valid_bsn(42)))
    receipt = await school.receipt_for(mid)
    assert receipt.body["status"] == "accepted"
    assert await school.quiet(1.0) == []  # the handled-again delivery said nothing more
    assert matcher.crashes == 1
    assert await db.fetchval("SELECT count(*) FROM melding") == 1
    assert await db.fetchval("SELECT count(*) FROM inbox") == 1


async def test_a_receipt_published_twice_keeps_its_id(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """A process that dies between publishing its outbox rows and deleting them leaves
    them to the relay, which publishes them again: the copy has the receipt's id."""
    await db.execute(
        """CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql
               AS $$ BEGIN RETURN NULL; END $$;
           CREATE TRIGGER keep_published BEFORE DELETE ON outbox
               FOR EACH ROW EXECUTE FUNCTION keep_row();"""
    )
    school = partners["school"]
    mid = await school.send(register_body("R-9", bsn=valid_bsn(49)))
    first = await school.receipt_for(mid)
    assert first.body["status"] == "accepted"
    assert str(await db.fetchval("SELECT receipt_id FROM inbox")) == first.message_id

    relay = Outbox(pipeline.runtimes[0].pool, pipeline.runtimes[0].publisher)

    async def republished() -> bool:
        # A writer or a service's relay may hold the kept row for a moment (SKIP LOCKED).
        return await relay.relay_once(grace_seconds=0) >= 1

    await eventually(republished)
    copy = await school.receipt_for(mid)
    assert copy.message_id == first.message_id
    assert copy.body == first.body


async def test_a_reused_message_id_gets_duplicate_and_changes_nothing(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school = partners["school"]
    body = register_body("R-2", bsn=valid_bsn(43))
    mid = await school.send(body, message_id="msg-0001")
    first = await school.receipt_for(mid)
    await school.send(body, message_id="msg-0001")
    second = await school.receipt_for(mid)
    assert first.body["status"] == "accepted"
    assert second.body["status"] == "duplicate"
    assert second.message_id != first.message_id
    assert await db.fetchval("SELECT count(*) FROM melding") == 1
    # Invalid messages are deduplicated the same way.
    await school.send({"type": "melding.withdraw"}, message_id="msg-0002")
    assert (await school.receipt_for("msg-0002")).body["status"] == "rejected"
    await school.send({"type": "melding.withdraw"}, message_id="msg-0002")
    assert (await school.receipt_for("msg-0002")).body["status"] == "duplicate"


async def test_technical_failure_is_retried_then_parked_intact(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    attempts: list[int] = []

    async def setup(runtime: Runtime) -> None:
        async def database_down(deliveries: Sequence[Delivery]) -> None:
            attempts.extend(d.attempt for d in deliveries)
            raise ConnectionRefusedError("database unreachable")

        runtime.consume(MATCHER_QUEUE, DELIVERIES, database_down, batch_size=1)

    await system.start("ingest")
    runtime = await system.start("matcher", setup=setup)
    school = partners["school"]
    mid = await school.send(register_body("R-3", bsn=valid_bsn(44)))

    channel = await runtime.connection.channel()
    queue = await channel.get_queue(parked_queue(MATCHER_QUEUE), ensure=False)
    parked: aio_pika.abc.AbstractIncomingMessage | None = None

    async def is_parked() -> bool:
        nonlocal parked
        parked = await queue.get(fail=False, no_ack=True)
        return parked is not None

    await eventually(is_parked)
    assert parked is not None
    assert attempts == [0, 1, 2]  # first try + one per delay queue (100 ms, 300 ms)
    assert parked.message_id == mid
    assert parked.headers[ATTEMPT_HEADER] == 3
    assert "ConnectionRefusedError" in str(parked.headers[ERROR_HEADER])
    assert b'"melding_ref":"R-3"' in parked.body
    assert await school.quiet(0.5) == []  # no receipt until the outcome is durable
    await channel.close()


async def test_outbox_row_survives_a_relay_crash_and_is_published_later(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    runtime = await system.start("ingest")
    message_id = uuid.uuid4()
    async with runtime.pool.acquire() as conn:
        await write(
            conn,
            [
                OutboundMessage(
                    OUTBOUND_EXCHANGE, "school", b'{"type":"probe"}', "probe", message_id
                )
            ],
        )

    gate = asyncio.Event()
    claimed = asyncio.Event()

    class StalledPublisher(Publisher):
        async def publish(self, *messages: OutboundMessage) -> None:
            claimed.set()
            await gate.wait()  # the process "dies" here, rows claimed, nothing deleted

    stalled = StalledPublisher(runtime.connection)
    await stalled.start()
    crashed = asyncio.create_task(Outbox(runtime.pool, stalled).relay_once(grace_seconds=0))
    await asyncio.wait_for(claimed.wait(), 5)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1
    assert await partners["school"].quiet(0.3) == []

    assert await Outbox(runtime.pool, runtime.publisher).relay_once(grace_seconds=0) == 1
    got = await partners["school"].next()
    assert got.message_id == str(message_id)
    assert got.body == {"type": "probe"}
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    await stalled.close()


async def test_services_refuse_an_out_of_date_schema(test_region: RegionUnderTest) -> None:
    name = f"vi_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(test_region.settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = test_region.settings.database_url.rsplit("/", 1)[0] + "/" + name
        with pytest.raises(migrate.SchemaOutOfDate, match="verwijsindex db upgrade"):
            await Runtime.open("test", test_region.with_settings(database_url=url).settings)
        # Two upgrades at once apply each migration exactly once.
        await asyncio.gather(migrate.upgrade(url), migrate.upgrade(url))
        conn = await asyncpg.connect(url)
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        await conn.close()
        assert sorted(r["version"] for r in versions) == [
            m.version for m in migrate.available_migrations()
        ]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_unknown_or_missing_user_id_lands_whole_in_rejected(
    pipeline: System, partners: dict[str, PartnerClient], test_region: RegionUnderTest
) -> None:
    # The services' own login may set any user_id it likes; partners cannot.
    runtime = pipeline.runtimes[0]
    body = register_body("X-1", bsn=valid_bsn(45))

    for user_id in (None, "guest"):
        await runtime.publisher.publish(
            OutboundMessage(
                "vi.inbound",
                "melding.register",
                json.dumps(body).encode(),
                message_type=None,
                message_id=f"anon-{user_id}",
                user_id=user_id,
            ),
        )
    channel = await runtime.connection.channel()
    queue = await channel.get_queue("vi.rejected", ensure=False)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def both() -> bool:
        msg = await queue.get(fail=False, no_ack=True)
        if msg is not None:
            got.append(msg)
        return len(got) == 2

    await eventually(both)
    reasons = sorted(str(m.headers[ERROR_HEADER]) for m in got)
    assert "no user_id" in reasons[0]
    assert "'guest' is not a partner" in reasons[1]
    assert all(m.body == json.dumps(body).encode() for m in got)
    for client in partners.values():
        assert await client.quiet(0.2) == []
    await channel.close()


async def test_a_partner_cannot_publish_as_another(partners: dict[str, PartnerClient]) -> None:
    school = partners["school"]
    with pytest.raises(Exception, match=r"(?i)user_id|PRECONDITION|closed"):
        await school.send(
            register_body("X-2", bsn=valid_bsn(46)), user_id=partners["jeugdteam"].broker_user
        )
        await asyncio.sleep(0.5)
        await school.send(register_body("X-3", bsn=valid_bsn(47)))
