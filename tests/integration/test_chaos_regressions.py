"""Defects the chaos run (`python -m chaos.run`, docs/reliability.md) found, each kept
fixed by a fast test of its own."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prometheus_client import REGISTRY

from shared.amqp.consuming import DELIVERIES, Delivery
from shared.amqp.management import Management
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY, MATCHER_QUEUE
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.service import Runtime
from tests.conftest import System
from tests.support import RegionUnderTest, eventually, register_body, valid_bsn

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def _json_lines(stderr: bytes) -> list[dict[str, Any]]:
    """Every line parsed as one JSON object (the assertion names the first that is not)."""
    records = []
    for line in stderr.decode().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line[:200]!r}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


async def _run_python(*argv: str, env: dict[str, str]) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stderr


async def test_library_log_records_are_json_lines_with_the_service_context() -> None:
    """Found in the chaos run's service logs: during the restarts aio-pika, aiormq,
    asyncpg and asyncio wrote plain-text lines and multi-line tracebacks between the
    JSON events (800 of them in a 10,000 run), which a log shipper cannot read as one
    event per line."""
    program = textwrap.dedent(
        """
        import logging
        from shared.logs import configure_logging, message_context
        configure_logging("ingest", "info")
        configure_logging("ingest", "info")  # twice, as the CLI may: still one line each
        try:
            raise ConnectionError("channel closed")
        except ConnectionError:
            logging.getLogger("aio_pika.robust_connection").exception("Callback failed")
        with message_context(message_id="m-1"):
            logging.getLogger("asyncpg.pool").warning("Failed to restore the pool")
        logging.getLogger("aiormq.connection").debug("below the level: not written")
        """
    )
    code, stderr = await _run_python("-c", program, env={})
    assert code == 0, stderr
    records = _json_lines(stderr)
    assert [r["event"] for r in records] == ["Callback failed", "Failed to restore the pool"]
    failed, pool = records
    assert failed["level"] == "error"
    assert failed["logger"] == "aio_pika.robust_connection"
    assert failed["service"] == "ingest"
    assert "ConnectionError: channel closed" in failed["exception"]
    assert pool["message_id"] == "m-1"


async def test_an_ack_lost_with_the_channel_is_a_redelivery_not_an_escaped_error(
    system: System,
) -> None:
    """Found by the chaos run's RabbitMQ restart: when the channel went away between a
    handled message and its ack, the ack's exception escaped into aio-pika (a traceback
    in the log, the outcome never counted). The message simply comes again, and the
    handling counts as done."""
    seen: list[bool] = []

    async def setup(runtime: Runtime) -> None:
        async def handler(deliveries: Sequence[Delivery]) -> None:
            for delivery in deliveries:
                seen.append(bool(delivery.message.redelivered))
                if len(seen) == 1:
                    await delivery.message.channel.close()  # the broker went away

        runtime.consume(MATCHER_QUEUE, DELIVERIES, handler, batch_size=1)

    def handled_ok() -> float:
        labels = {"service": "matcher", "queue": MATCHER_QUEUE, "outcome": "ok"}
        return REGISTRY.get_sample_value("vi_messages_total", labels) or 0.0

    before = handled_ok()
    runtime = await system.start("matcher", setup=setup)
    await runtime.publisher.publish(
        OutboundMessage(
            INTERNAL_EXCHANGE, MATCHER_KEY, b"{}", message_type=None, message_id="lost-ack-1"
        )
    )

    async def twice() -> bool:
        return len(seen) >= 2

    await eventually(twice, timeout=20)
    assert seen == [False, True]
    await eventually(lambda: _at_least(handled_ok, before + 2))


async def _at_least(value: Any, floor: float) -> bool:
    return bool(value() >= floor)
