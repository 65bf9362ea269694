"""`verwijsindex status`: its exit code for scripts and monitoring, and the age of the
oldest message, which it finds out without spending any message's delivery budget."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cli.status import Attention
from services.retention.app import setup as retention_setup
from shared.amqp.inspect import DELIVERY_COUNT_HEADER
from shared.amqp.topology import MATCHER_QUEUE, REJECTED_QUEUE, parked_queue
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from testing.ports import free_port
from tests.conftest import System
from tests.support import RegionUnderTest, drain, eventually, no_consumers, run_cli


async def _status(region: RegionUnderTest) -> tuple[int, dict[str, Any]]:
    result = await run_cli(region, "status", "--json")
    return result.exit_code, json.loads(result.stdout)


async def _put(runtime: Runtime, queue: str, message_id: str) -> None:
    await runtime.publisher.publish(
        OutboundMessage("", queue, b"{}", message_type=None, message_id=message_id)
    )


async def test_the_exit_code_names_each_condition_that_needs_attention(
    test_region: RegionUnderTest, system: System, db: asyncpg.Connection[Any]
) -> None:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    retention = await system.start("retention", setup=retention_setup)

    async def all_ready() -> bool:
        return int(await db.fetchval("SELECT count(*) FROM service_instance WHERE ready")) == 4

    await eventually(all_ready)
    ingest = system.runtimes[0]
    assert (await _status(test_region))[0] == 0

    await _put(ingest, parked_queue(MATCHER_QUEUE), "parked-1")
    code, doc = await _status(test_region)
    assert code == Attention.PARKED, doc["attention"]
    await drain(ingest, parked_queue(MATCHER_QUEUE))

    await _put(ingest, REJECTED_QUEUE, "rejected-1")
    code, doc = await _status(test_region)
    assert code == Attention.REJECTED, doc["attention"]
    await drain(ingest, REJECTED_QUEUE)

    await system.stop(retention)
    code, doc = await _status(test_region)
    assert code == Attention.SERVICE_DOWN
    assert doc["attention"] == [{"code": 32, "problem": "no live replica of retention reports in"}]
    await system.start("retention", setup=retention_setup)
    assert (await _status(test_region))[0] == 0

    # A matcher that reports in but does not consume its queue.
    await system.stop(next(r for r in system.runtimes if r.name == "matcher"))
    await system.start("matcher", setup=no_consumers)
    code, doc = await _status(test_region)
    assert code == Attention.NO_CONSUMERS, doc["attention"]
    text = await run_cli(test_region, "status")
    assert text.exit_code == Attention.NO_CONSUMERS
    assert "Needs attention (exit code 16):" in text.output
    assert "vi.matcher has no consumer" in text.output


async def test_conditions_add_up_and_unreachable_backends_give_1(
    test_region: RegionUnderTest, system: System
) -> None:
    code, _ = await _status(test_region)
    assert code == Attention.NO_CONSUMERS | Attention.SERVICE_DOWN  # nothing runs
    writer = await system.start("matcher", setup=no_consumers)
    await _put(writer, parked_queue(MATCHER_QUEUE), "parked-1")
    await _put(writer, REJECTED_QUEUE, "rejected-1")
    code, _ = await _status(test_region)
    # Every condition a single broker node can have (REPLICAS needs a cluster: the
    # cluster tests cover it).
    assert code == sum(Attention) - Attention.REPLICAS

    for broken in (
        test_region.with_settings(management_url="http://guest:guest@127.0.0.1:1"),
        test_region.with_settings(amqp_url="amqp://guest:guest@127.0.0.1:1/"),
    ):
        result = await run_cli(broken, "status")
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output


async def test_status_uses_whichever_listed_broker_node_answers(
    test_region: RegionUnderTest,
) -> None:
    """VI_MANAGEMENT_URL and VI_AMQP_URL may list several nodes: one of them down does
    not make status fail (a real cluster with a SIGKILLed node: tests/cluster/)."""
    settings = test_region.settings
    down = f"127.0.0.1:{free_port()}"  # nothing listens here
    management_down = f"http://guest:guest@{down}"
    amqp_down = urlunsplit(urlsplit(settings.amqp_url)._replace(netloc=f"guest:guest@{down}"))
    one_down = test_region.with_settings(
        management_url=f"{management_down},{settings.management_url}",
        amqp_url=f"{amqp_down},{settings.amqp_url}",
    )
    code, doc = await _status(one_down)
    assert code == Attention.NO_CONSUMERS | Attention.SERVICE_DOWN, doc["attention"]
    assert doc["queues"] and doc["cluster_nodes"]

    all_down = test_region.with_settings(management_url=f"{management_down},{management_down}")
    result = await run_cli(all_down, "status")
    assert result.exit_code == 1, result.output
    assert result.output.count(down) == 2, result.output  # each node named once
    assert "Traceback" not in result.output


async def test_the_oldest_age_is_shown_without_spending_delivery_budget(
    test_region: RegionUnderTest, system: System
) -> None:
    # Nothing consumes: one message waits in a work queue, one in vi.rejected.
    writer = await system.start("matcher", setup=no_consumers)
    await _put(writer, MATCHER_QUEUE, "waiting")
    await _put(writer, REJECTED_QUEUE, "rejected")
    ages: dict[str, list[float]] = {MATCHER_QUEUE: [], REJECTED_QUEUE: []}

    async def aged() -> bool:
        _, doc = await _status(test_region)
        rows = {q["queue"]: q for q in doc["queues"]}
        assert rows["vi.email"]["oldest_seconds"] is None  # empty
        for name, seen in ages.items():
            if rows[name]["oldest_seconds"] is not None:
                seen.append(rows[name]["oldest_seconds"])
        return all(len(seen) >= 3 for seen in ages.values())

    # The broker samples queue lengths every 5 s; a queue declared a moment ago may
    # have no sample yet.
    await eventually(aged, timeout=30)
    for seen in ages.values():
        assert seen == sorted(seen)  # it only grows while the message waits
    # The listing commands do not give messages back either.
    for _ in range(3):
        await run_cli(test_region, "rejected", "list")

    for queue in (MATCHER_QUEUE, REJECTED_QUEUE):
        [message] = await drain(writer, queue)
        assert not message.redelivered
        assert (message.headers or {}).get(DELIVERY_COUNT_HEADER, 0) == 0
