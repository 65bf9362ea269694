"""Health, readiness, metrics, a broker-cancelled consumer, and a clean SIGTERM."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from shared.amqp.management import Management
from shared.db import heartbeat
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
    assert json.loads(body)["checks"] == {
        "broker": True,
        "database": True,
        "consumers": True,
        "first_pass_consuming": True,  # ingest's first pass, on a consumer of its own
    }

    mid = await partners["school"].send(register_body("M-1", bsn=valid_bsn(7001)))
    await partners["school"].receipt_for(mid)
    status, metrics = await _get(port, "/metrics")
    assert status == 200
    text = metrics.decode()
    series = 'vi_messages_total{outcome="ok",queue="vi.ingest",service="ingest"} '
    assert series in text
    # Counted by ingest's first pass, which reads vi.ingest on a consumer of its own.
    assert float(text.split(series, 1)[1].split("\n", 1)[0]) >= 1
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


async def test_the_heartbeat_census_reports_replicas_gone_without_leaving(
    system: System, db: asyncpg.Connection[Any]
) -> None:
    matcher = await system.start("matcher")

    async def ready() -> bool:
        return bool(await db.fetchval("SELECT bool_and(ready) FROM service_instance"))

    await eventually(ready)
    # Two matchers that died without leaving: one a minute ago, and one so long ago
    # that the metric has forgotten it (status still lists it as stale).
    for instance, silent in (("matcher-crashed", 60), ("matcher-old", 3600)):
        await db.execute(
            """INSERT INTO service_instance
                   (instance_id, service, host, pid, started_at, last_seen, ready)
               VALUES ($1, 'matcher', 'h', 1, now() - interval '2 hours',
                       now() - make_interval(secs => $2), true)""",
            instance,
            silent,
        )
    assert await heartbeat.census(matcher.pool) == {"matcher": {"live": 1, "ready": 1, "gone": 1}}

    def replicas(state: str) -> float | None:
        return REGISTRY.get_sample_value("vi_replicas", {"service": "matcher", "state": state})

    async def reported() -> bool:  # by the running replica, at its next heartbeat
        return replicas("gone") == 1

    await eventually(reported, timeout=3 * heartbeat.INTERVAL_SECONDS)
    assert (replicas("live"), replicas("ready")) == (1, 1)
