"""The outbox shared by the services and the portal: the portal's rows are published by
its relay alone, with its login and headers; rows from before the shared outbox move on
upgrade; and the relay leaves alone a row whose fast path is still under way."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest

from services.portal import gateway
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INGEST_QUEUE, OUTBOUND_EXCHANGE
from shared.contract.portal import ACTOR_HEADER, COORDINATOR_HEADER, ON_BEHALF_OF_HEADER
from shared.db import migrate
from shared.db.outbox import Outbox, write
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from tests.conftest import PORTAL_SCHOOL, System
from tests.integration.portal_support import portal_settings, start_portal
from tests.support import RegionUnderTest, drain, eventually


class GatedPublisher(Publisher):
    """A real publisher whose first publish waits for `gate`: a slow broker, a busy
    event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def publish(self, *messages: OutboundMessage) -> None:
        if not self.started.is_set():
            self.started.set()
            await self.gate.wait()
        await super().publish(*messages)


def _probe(message_id: uuid.UUID) -> OutboundMessage:
    return OutboundMessage(OUTBOUND_EXCHANGE, "school", b'{"type":"probe"}', "probe", message_id)


async def test_a_slow_transactions_row_is_not_relayed_while_its_publish_is_under_way(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """A transaction that ran longer than the grace period (lock waits, a big batch)
    used to leave a row the moment it committed that looked old enough to relay: any
    other process's relay published it a second time while the writer still did."""
    runtime = await system.start("ingest")
    gated = GatedPublisher(runtime.connection)
    await gated.start()
    writer = Outbox(runtime.pool, gated, grace_seconds=1.0)
    other_process = Outbox(runtime.pool, runtime.publisher, grace_seconds=1.0)
    message_id = uuid.uuid4()

    async def slow_transaction() -> None:
        async with writer.unit_of_work() as uow:
            await asyncio.sleep(1.5)
            uow.emit(_probe(message_id))

    written = asyncio.create_task(slow_transaction())
    await asyncio.wait_for(gated.started.wait(), 10)  # committed; its publish under way
    assert await other_process.relay_once() == 0
    gated.gate.set()
    await written
    school = partners["school"]
    assert (await school.next()).message_id == str(message_id)
    assert await school.quiet(0.5) == []

    async def deleted() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM outbox") == 0)

    await eventually(deleted)
    await gated.close()


async def test_the_relay_skips_a_row_its_own_process_is_still_publishing(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    runtime = await system.start("ingest")
    gated = GatedPublisher(runtime.connection)
    await gated.start()
    outbox = Outbox(runtime.pool, gated, grace_seconds=0.2)
    message_id = uuid.uuid4()

    async def write_and_publish() -> None:
        async with outbox.unit_of_work() as uow:
            uow.emit(_probe(message_id))

    written = asyncio.create_task(write_and_publish())
    await asyncio.wait_for(gated.started.wait(), 10)
    await asyncio.sleep(0.5)  # the row is past the grace period, its publish still waits
    assert await outbox.relay_once() == 0
    gated.gate.set()
    await written
    await outbox.flush()
    school = partners["school"]
    assert (await school.next()).message_id == str(message_id)
    assert await school.quiet(0.5) == []
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    await gated.close()


async def test_a_portal_request_waits_for_the_portals_own_relay_and_login(
    portal_region: RegionUnderTest, system: System, db: asyncpg.Connection[Any]
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    runtime = system.runtimes[0]
    portal_gateway = app.state.portal.gateway
    assert isinstance(portal_gateway, gateway.Gateway)

    async def connected() -> bool:
        return portal_gateway.publisher is not None

    await eventually(connected)
    publisher = portal_gateway.publisher
    portal_gateway.publisher = None  # the portal's broker connection is away
    actor = uuid.uuid4()
    request = gateway.new_request(
        PORTAL_SCHOOL, actor, {"type": "melding.withdraw", "melding_ref": "P-1"}
    )
    async with runtime.pool.acquire() as conn, conn.transaction():
        await gateway.record(conn, request)
    assert await portal_gateway.publish(request) is False
    row = await db.fetchrow("SELECT sender, headers, message_type FROM outbox")
    assert row is not None and row["sender"] == gateway.SENDER
    assert row["message_type"] is None
    # The services' relay publishes with their login, which the broker would refuse for
    # the portal's user_id: it never takes the portal's rows.
    assert await runtime.outbox.relay_once(grace_seconds=0) == 0

    portal_gateway.publisher = publisher
    assert await portal_gateway.relay_once(grace_seconds=0) == 1
    [message] = await drain(runtime, INGEST_QUEUE)
    assert portal_region.region.portal is not None
    assert message.user_id == portal_region.region.portal.broker_user
    assert message.message_id == str(request.message_id)
    assert message.type is None
    assert message.headers[ON_BEHALF_OF_HEADER] == PORTAL_SCHOOL
    assert message.headers[ACTOR_HEADER] == str(actor)
    assert json.loads(message.body) == {"type": "melding.withdraw", "melding_ref": "P-1"}
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0

    # Connected, the request goes out at once and its row is deleted.
    again = gateway.new_request(PORTAL_SCHOOL, actor, {"type": "melding.withdraw"})
    async with runtime.pool.acquire() as conn, conn.transaction():
        await gateway.record(conn, again)
    assert await portal_gateway.publish(again) is True
    await portal_gateway.outbox.flush()
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    [message] = await drain(runtime, INGEST_QUEUE)
    assert message.message_id == str(again.message_id)


async def test_unpublished_portal_requests_move_to_the_outbox_on_upgrade(
    test_region: RegionUnderTest,
) -> None:
    name = f"vi_upgrade_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(test_region.settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(
            test_region.settings.database_url.rsplit("/", 1)[0] + "/" + name
        )
        migrations = migrate.available_migrations()
        for migration in migrations:
            if migration.version < 10:
                await conn.execute(migration.sql)
        waiting, sent, assign, actor = (uuid.uuid4() for _ in range(4))
        await conn.execute(
            """INSERT INTO portal_message (message_id, partner_id, actor, routing_key,
                      body, created_at, published_at, coordinator)
               VALUES ($1, 'linde', $4, 'melding.register', '{"a":1}',
                       now() - interval '2 minutes', NULL, NULL),
                      ($2, 'linde', $4, 'melding.register', '{"b":2}', now(), now(), NULL),
                      ($3, 'portal', $4, 'regie.assign', '{"c":3}',
                       now() - interval '1 minute', NULL, '0363')""",
            waiting,
            sent,
            assign,
            actor,
        )
        [upgrade] = [m for m in migrations if m.version == 10]
        await conn.execute(upgrade.sql)
        rows = await conn.fetch(
            """SELECT message_id, exchange, routing_key, body, message_type, headers::text,
                      sender, created_at < now() - interval '30 seconds' AS aged
               FROM outbox ORDER BY created_at"""
        )
        assert [{**r, "headers": json.loads(r["headers"])} for r in rows] == [
            {
                "message_id": waiting,
                "exchange": "vi.inbound",
                "routing_key": "melding.register",
                "body": b'{"a":1}',
                "message_type": None,
                "headers": {ON_BEHALF_OF_HEADER: "linde", ACTOR_HEADER: str(actor)},
                "sender": gateway.SENDER,
                "aged": True,
            },
            {
                "message_id": assign,
                "exchange": "vi.inbound",
                "routing_key": "regie.assign",
                "body": b'{"c":3}',
                "message_type": None,
                "headers": {COORDINATOR_HEADER: "0363", ACTOR_HEADER: str(actor)},
                "sender": gateway.SENDER,
                "aged": True,
            },
        ]
        assert await conn.fetchval("SELECT count(*) FROM portal_message") == 3
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("sender", [None, gateway.SENDER])
async def test_each_outbox_reports_the_backlog_of_its_own_sender(
    system: System, sender: str | None
) -> None:
    runtime = await system.start("ingest")
    mine = Outbox(runtime.pool, None, sender=sender)
    theirs = Outbox(runtime.pool, None, sender="someone-else")
    async with runtime.pool.acquire() as conn:
        await write(conn, [_probe(uuid.uuid4()), _probe(uuid.uuid4())], sender=sender)
    assert (await mine.backlog_and_lag())[0] == 2
    assert (await theirs.backlog_and_lag())[0] == 0
