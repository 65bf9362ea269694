"""Health, readiness, metrics, a broker-cancelled consumer, and a clean SIGTERM."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.amqp.management import Management
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import RegionUnderTest, eventually, http_get, register_body, valid_bsn


async def _get(port: int, path: str) -> tuple[int, bytes]:
    return await http_get(f"http://127.0.0.1:{port}{path}")


async def test_health_readiness_and_metrics(
    system: System, test_region: RegionUnderTest, partners: dict[str, PartnerClient]
) -> None:
    settings = test_region.with_settings(http_port=0, http_host="127.0.0.1").settings
    ingest = await system.start("ingest", settings=settings)
    await system.start("matcher")
    assert ingest.http is not None and ingest.http.port
    port = ingest.http.port
    assert (await _get(port, "/healthz"))[0] == 200
    status, body = await _get(port, "/readyz")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"broker": True, "database": True, "consumers": True}

    mid = await partners["school"].send(register_body("M-1", bsn=valid_bsn(7001)))
    await partners["school"].receipt_for(mid)
    status, metrics = await _get(port, "/metrics")
    assert status == 200
    text = metrics.decode()
    assert 'vi_messages_total{outcome="ok",queue="vi.ingest",service="ingest"}' in text
    assert "vi_handling_seconds_bucket" in text
    assert (await _get(port, "/nope"))[0] == 404


async def test_consumer_cancelled_by_the_broker_is_noticed_and_recovered(
    system: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    management: Management,
) -> None:
    await system.start("ingest")
    matcher = await system.start("matcher")
    # An operator deletes the matcher's queue: the broker cancels the consumer.
    await management.call("DELETE", f"/queues/{test_region.vhost}/vi.matcher")

    async def unready() -> bool:
        return not (await matcher.readiness())["consumers"]

    async def ready() -> bool:
        return (await matcher.readiness())["consumers"]

    await eventually(unready, timeout=5)
    await eventually(ready, timeout=15)
    mid = await partners["school"].send(register_body("M-2", bsn=valid_bsn(7002)))
    assert (await partners["school"].receipt_for(mid)).body["status"] == "accepted"


async def test_replicas_report_themselves_and_leave_on_stop(
    system: System, db: asyncpg.Connection[Any]
) -> None:
    first = await system.start("matcher")
    await system.start("matcher")

    async def two_ready() -> bool:
        rows = await db.fetch("SELECT ready FROM service_instance WHERE service = 'matcher'")
        return len(rows) == 2 and all(r["ready"] for r in rows)

    await eventually(two_ready)
    await system.stop(first)
    assert await db.fetchval("SELECT count(*) FROM service_instance") == 1
