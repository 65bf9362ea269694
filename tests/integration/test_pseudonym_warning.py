"""The development pseudonym key is announced once when a service starts, not on every
operator command (a subject request that finds nothing says it, where it matters)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from tests.support import RegionUnderTest, cli_env, eventually

WARNING = "dev_pseudonym_key"


def environment_without_key(region: RegionUnderTest) -> dict[str, str]:
    env = {**os.environ, **cli_env(region), "VI_LOG_LEVEL": "info"}
    del env["VI_PSEUDONYM_KEY"]
    return env


async def test_a_service_start_warns_once(test_region: RegionUnderTest, tmp_path: Path) -> None:
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log_file:
        service = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.ingest",
            env=environment_without_key(test_region),
            stderr=log_file,
        )
        try:

            async def started() -> bool:
                assert service.returncode is None, log_path.read_text()
                return "service_started" in log_path.read_text()

            await eventually(started, timeout=30)
            await asyncio.sleep(0.5)  # and it stays said once while running
        finally:
            service.send_signal(signal.SIGTERM)
            await asyncio.wait_for(service.wait(), 30)
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert events.count(WARNING) == 1, events
    assert events.index(WARNING) < events.index("service_started")


async def verwijsindex(region: RegionUnderTest, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "verwijsindex"),
        *args,
        env=environment_without_key(region),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_cli_commands_do_not_repeat_it(test_region: RegionUnderTest) -> None:
    now = datetime.now(UTC).isoformat()
    status, out = await verwijsindex(test_region, "retention", "run", "--now", now)
    assert status == 0, out
    assert WARNING not in out and "pseudonym" not in out.lower()

    # Where the key decides the answer, a request that finds nothing names it.
    status, out = await verwijsindex(test_region, "subject", "export", "--bsn", "111222333")
    assert status == 1
    assert WARNING not in out
    assert "nothing is stored on this youth under the development key" in out
    assert "VI_PSEUDONYM_KEY" in out
