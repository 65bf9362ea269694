"""A service waits for RabbitMQ and PostgreSQL instead of exiting: at start-up and when
it loses one while running. It reports itself unready meanwhile, logs one line when a
backend goes and one when it comes back, and then works as before.

The service runs as a real process. It reaches the test's broker vhost and database
through switchable TCP proxies in this test, so that "down" is a refused or cut
connection to the real backends, and the machine's RabbitMQ and PostgreSQL stay up for
everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from shared.partner_client import PartnerClient
from testing.ports import free_port
from testing.proxy import SwitchableProxy, via
from tests.integration.test_operations import _get as http_get
from tests.support import RegionUnderTest, cli_env, eventually, register_body

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class IngestProcess:
    process: asyncio.subprocess.Process
    log_path: Path
    http_port: int

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, event: str, backend: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["event"] == event and r.get("backend") == backend]

    async def logged(self, event: str, backend: str, count: int = 1) -> None:
        async def seen() -> bool:
            self.assert_alive()
            return len(self.events(event, backend)) >= count

        await eventually(seen, timeout=20)

    def assert_alive(self) -> None:
        tail = self.log_path.read_text(encoding="utf-8")[-2000:]
        assert self.process.returncode is None, f"the service exited: {tail}"

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = await http_get(self.http_port, "/readyz")
        return status, json.loads(body)

    async def becomes(self, ready: bool) -> dict[str, bool]:
        last: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal last
            self.assert_alive()
            with contextlib.suppress(OSError):
                status, last = await self.readyz()
                return (status == 200) is ready and last["ready"] is ready
            return False

        await eventually(reached, timeout=20)
        return dict(last["checks"])


@pytest.fixture
async def proxies(
    test_region: RegionUnderTest,
) -> AsyncIterator[tuple[SwitchableProxy, SwitchableProxy]]:
    settings = test_region.settings
    broker = SwitchableProxy(urlsplit(settings.amqp_url).port or 5672)
    database = SwitchableProxy(urlsplit(settings.database_url).port or 5432)
    try:
        yield broker, database
    finally:
        await broker.off()
        await database.off()


@pytest.fixture
async def ingest(
    test_region: RegionUnderTest,
    proxies: tuple[SwitchableProxy, SwitchableProxy],
    tmp_path: Path,
) -> AsyncIterator[IngestProcess]:
    broker, database = proxies
    settings = test_region.settings
    http_port = free_port()
    env = {
        **os.environ,
        **cli_env(test_region),
        "VI_AMQP_URL": via(settings.amqp_url, broker.port),
        "VI_DATABASE_URL": via(settings.database_url, database.port),
        "VI_HTTP_HOST": "127.0.0.1",
        "VI_HTTP_PORT": str(http_port),
        "VI_LOG_LEVEL": "info",
    }
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.ingest",
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    service = IngestProcess(process, log_path, http_port)
    try:
        yield service
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _answers_a_message(partner: PartnerClient) -> None:
    """Ingest answers an invalid melding itself, through its database and its broker."""
    message_id = await partner.send(register_body("B-1", bsn="123456789"))
    receipt = await partner.receipt_for(message_id, timeout=20)
    assert receipt.body["status"] == "rejected"


async def test_a_service_started_while_both_backends_are_down_waits_for_them(
    proxies: tuple[SwitchableProxy, SwitchableProxy],
    ingest: IngestProcess,
    partners: dict[str, PartnerClient],
) -> None:
    broker, database = proxies
    await ingest.logged("backend_unavailable", "postgresql")
    assert await ingest.becomes(ready=False) == {
        "broker": False,
        "database": False,
        "consumers": False,
    }
    await asyncio.sleep(2.0)  # several attempts, with backoff
    ingest.assert_alive()
    assert len(ingest.events("backend_unavailable", "postgresql")) == 1

    await database.on()
    await ingest.logged("backend_available", "postgresql")
    await ingest.logged("backend_unavailable", "rabbitmq")
    checks = await ingest.becomes(ready=False)
    assert checks["database"] and not checks["broker"]

    await broker.on()
    await ingest.logged("backend_available", "rabbitmq")
    await ingest.becomes(ready=True)
    await _answers_a_message(partners["school"])
    assert len(ingest.events("backend_unavailable", "postgresql")) == 1
    assert len(ingest.events("backend_unavailable", "rabbitmq")) == 1


async def test_a_running_service_rides_out_losing_each_backend(
    proxies: tuple[SwitchableProxy, SwitchableProxy],
    ingest: IngestProcess,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    broker, database = proxies
    await database.on()
    await broker.on()
    await ingest.becomes(ready=True)

    await broker.off()
    await ingest.logged("backend_unavailable", "rabbitmq")
    assert not (await ingest.becomes(ready=False))["broker"]

    async def heartbeat_says_unready() -> bool:
        return await db.fetchval("SELECT bool_or(ready) FROM service_instance") is False

    await eventually(heartbeat_says_unready, timeout=12)  # the heartbeat writes every 5 s
    await asyncio.sleep(2.5)  # more than one reconnection attempt
    assert len(ingest.events("backend_unavailable", "rabbitmq")) == 1
    retry_reports = [r for r in ingest.records() if "Reconnecting" in r["event"]]
    assert retry_reports == []  # the libraries' line per attempt is dropped
    await broker.on()
    await ingest.logged("backend_available", "rabbitmq")
    await ingest.becomes(ready=True)
    await _answers_a_message(partners["school"])

    await database.off()
    assert not (await ingest.becomes(ready=False))["database"]
    await ingest.logged("backend_unavailable", "postgresql")
    await database.on()
    await ingest.logged("backend_available", "postgresql")
    await ingest.becomes(ready=True)
    await _answers_a_message(partners["jeugdteam"])
    assert len(ingest.events("backend_unavailable", "postgresql")) == 1


async def test_sigterm_while_waiting_stops_cleanly(ingest: IngestProcess) -> None:
    await ingest.logged("backend_unavailable", "postgresql")
    ingest.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(ingest.process.wait(), 10) == 0
    assert [r["started"] for r in ingest.records() if r["event"] == "service_stopping"] == [False]
