"""Defects the chaos run (`python -m chaos.run`, docs/reliability.md) found, each kept
fixed by a fast test of its own."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from shared.amqp.management import Management
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import RegionUnderTest, register_body, valid_bsn


async def _force_close(management: Management, vhost: str, connection_name: str) -> int:
    """What a broker restart does to a client: its connections closed under it."""
    found: list[dict[str, Any]] = []
    for _ in range(50):  # the management API sees a new connection after a moment
        found = [
            c
            for c in await management.call("GET", f"/vhosts/{quote(vhost, safe='')}/connections")
            if c.get("client_properties", {}).get("connection_name") == connection_name
        ]
        if found:
            break
        await asyncio.sleep(0.1)
    for connection in found:
        await management.call("DELETE", f"/connections/{quote(connection['name'], safe='')}")
    return len(found)


async def _send_when_back(client: PartnerClient, body: dict[str, Any]) -> str:
    """Publish once the client has reconnected (a real partner re-sends until confirmed)."""
    for _ in range(200):
        try:
            mid = await client.send(body)
        except Exception:
            await asyncio.sleep(0.1)
            continue
        assert mid is not None
        return mid
    raise AssertionError("the partner client never reconnected")


async def test_a_partner_keeps_reading_its_mailbox_after_the_broker_dropped_it(
    test_region: RegionUnderTest, pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    """Found by the chaos run's RabbitMQ restart: after reconnecting, the partner client
    published fine but never consumed its mailbox again (a queue taken with
    get_queue(ensure=False) is not restored by aio-pika), so receipts and notices piled
    up in partner.<id> unread."""
    school = partners["school"]
    first = await school.send(register_body("CR-1", bsn=valid_bsn(9101)))
    assert (await school.receipt_for(first)).body["status"] == "accepted"

    management = Management(test_region.settings.management_url)
    assert await _force_close(management, test_region.vhost, "partner-school") == 1

    second = await _send_when_back(school, register_body("CR-2", bsn=valid_bsn(9102)))
    receipt = await school.receipt_for(second, timeout=20)
    assert receipt.body["status"] == "accepted"
    assert receipt.body["melding_ref"] == "CR-2"
