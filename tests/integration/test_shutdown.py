"""SIGTERM drains: in-flight messages finish, nothing is lost or half-done."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient, Received
from tests.conftest import System
from tests.support import RegionUnderTest, cli_env, eventually, register_body, valid_bsn

COUNT = 300


async def test_sigterm_drains_and_nothing_is_lost(
    test_region: RegionUnderTest,
    tmp_path: Path,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await system.start("ingest")
    # Default prefetch (64) far above the pool size (the tests' 4): this also guards
    # against handlers starving the pool while they wait for a second connection.
    env = {**os.environ, **cli_env(test_region), "VI_LOG_LEVEL": "warning"}
    log_path = tmp_path / "matcher.log"
    log_file = log_path.open("wb")
    matcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.matcher", env=env, stderr=log_file
    )
    try:
        school = partners["school"]
        sent = [
            await school.send(register_body(f"T-{i}", bsn=valid_bsn(80_000 + i)))
            for i in range(COUNT)
        ]

        async def some_handled() -> bool:
            if matcher.returncode is not None:
                raise AssertionError(log_path.read_text()[-3000:])
            return int(await db.fetchval("SELECT count(*) FROM melding")) >= 20

        try:
            await eventually(some_handled, timeout=30)
        except AssertionError:
            raise AssertionError(log_path.read_text()[-3000:]) from None
        matcher.send_signal(signal.SIGTERM)
        await asyncio.wait_for(matcher.wait(), 30)
        assert matcher.returncode == 0, log_path.read_text()[-3000:]

    finally:
        if matcher.returncode is None:  # a failed test must not leave it running
            matcher.kill()
            await matcher.wait()
        log_file.close()

    # Nothing half-done: every stored melding has its inbox row, and its receipt went
    # out exactly once before the exit (a drained outbox; a killed process would leave
    # published rows behind, or receipts unsent).
    stored = int(await db.fetchval("SELECT count(*) FROM melding"))
    assert int(await db.fetchval("SELECT count(*) FROM inbox")) == stored
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    receipts: dict[str, list[str]] = {}

    def keep(got: Received) -> None:
        assert got.type == "receipt"
        receipts.setdefault(got.body["in_reply_to"], []).append(got.body["status"])

    # The receipts are in the broker, but the mailbox may take its time to bring them on
    # a busy machine: wait for as many as were stored, then for any extra one.
    while len(receipts) < stored:
        keep(await school.next(timeout=30))
    for got in await school.quiet(1.0):
        keep(got)
    assert len(receipts) == stored

    await system.start("matcher")  # the rest is still queued, and is handled now
    while len(receipts) < COUNT:
        got = await school.next(timeout=30)
        if got.type == "receipt":
            receipts.setdefault(got.body["in_reply_to"], []).append(got.body["status"])
    assert set(receipts) == set(sent)
    assert all(statuses == ["accepted"] for statuses in receipts.values())
    assert int(await db.fetchval("SELECT count(*) FROM melding")) == COUNT
    assert await school.quiet(1.0) == []
