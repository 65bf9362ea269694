"""Failover under load, on a real cluster: three RabbitMQ nodes and a PostgreSQL
primary with a synchronous standby (testing/cluster_backends.py), every service as real
processes (two replicas each), partners sending meldingen and hostile messages.

The short form of `scripts/chaos.sh --cluster`, with the same checks:
- the broker node that leads the ingest and matcher queues is SIGKILLed mid-load, and
  started again after a while: it must rejoin the cluster;
- the PostgreSQL primary is stopped hard mid-load and the standby promoted;
- every message is answered (lost 0), no effect happens twice, and the failover times
  (the kill to the first answer after it) are printed.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from chaos.options import Options
from chaos.run import Run
from testing.cluster_backends import PG_BIN
from testing.rabbit_node import RABBITMQ_BIN

pytestmark = pytest.mark.cluster

SHORT_FORM = Options(
    meldingen=800,
    bad=100,
    corpus=50,
    replicas=2,
    seed=18,
    in_flight=150,
    kills=False,
    cluster=True,
    receipt_timeout=150.0,
    drain_timeout=120.0,
    retry_delays_ms=(1_000, 5_000, 15_000, 60_000),
    label="cluster-test",
    record=False,
)


def _prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "the cluster runs PostgreSQL as the postgres user: needs root"
    for tool in (RABBITMQ_BIN / "rabbitmq-server", PG_BIN / "pg_basebackup"):
        if not tool.exists():
            return f"{tool} is not installed"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is not installed"
    return None


async def test_broker_node_killed_and_database_failed_over_under_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = _prerequisites()
    if missing:
        pytest.skip(missing)
    run = Run(SHORT_FORM)
    code = await run.main()
    report = run.report
    assert report is not None, "the run ended before its verdict"
    figures = report.figures
    with capsys.disabled():
        print("\nfailovers:", json.dumps(figures.get("failovers"), default=str))
    failed = [check.name for check in report.checks if not check.ok]
    assert code == 0, f"checks failed: {failed}"
    assert figures["lost"] == 0
    assert figures["duplicate_effects"] == 0
    failovers = {f["backend"]: f for f in figures["failovers"]}
    assert set(failovers) == {"rabbitmq", "postgresql"}
    assert all(f["seconds"] is not None for f in failovers.values()), failovers
    assert "rejoined_after_seconds" in failovers["rabbitmq"], failovers["rabbitmq"]
