"""The chaos run on a cluster (`--cluster`): three RabbitMQ nodes and a PostgreSQL
primary with a synchronous standby (testing/cluster_backends.py), each started for the
run and removed after it.

The broker "restart" SIGKILLs the node that leads the ingest and matcher queues, leaves
it down for a while under load, starts it again and waits until it has rejoined. The
database "restart" is a failover: the primary is stopped hard and the standby
promoted. Each is noted with its moment, so that the run can report the failover time:
from the kill to the first answer a partner receives after it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.backends import BackendError, Backends, wait_until_up
from shared.amqp.management import Management
from shared.amqp.topology import INGEST_QUEUE, MATCHER_QUEUE
from testing.cluster_backends import ClusterBackends, new_directory
from testing.processes import REPO_ROOT

REJOIN_TIMEOUT_SECONDS = 300.0


@dataclass
class ClusterChaosBackends(Backends):
    cluster: ClusterBackends | None = None
    # How long the killed node stays down, with the load going on.
    node_down_seconds: float = 10.0
    # Each failover: which backend, what was done and when (time.monotonic()).
    failovers: list[dict[str, Any]] = field(default_factory=list)
    _returns: list[asyncio.Task[None]] = field(default_factory=list)
    # Where the nodes' logs are copied before the cluster is removed (the run's files).
    logs_to: Path | None = None
    # The services' environment: `verwijsindex status` is asked with it while the
    # killed node is down (it must answer through the nodes left).
    status_env: dict[str, str] | None = None

    @classmethod
    def create(cls) -> ClusterChaosBackends:
        cluster = ClusterBackends.prepare(new_directory())
        return cls(
            amqp_url=cluster.broker.amqp_url(),
            management_url=cluster.broker.management_urls(),
            database_url=cluster.database.url("postgres"),
            kind="cluster",
            cluster=cluster,
        )

    @property
    def _cluster(self) -> ClusterBackends:
        assert self.cluster is not None
        return self.cluster

    async def start(self) -> None:
        await asyncio.to_thread(self._cluster.start)
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 120)

    async def stop(self) -> None:
        if self.logs_to is not None:
            await asyncio.to_thread(self._cluster.broker.save_logs, self.logs_to)
        await asyncio.to_thread(self._cluster.stop)

    async def _leader_index(self) -> int:
        """The node leading the most of vi.ingest and vi.matcher (in every vhost)."""
        queues = await Management(self.management_url).call(
            "GET", "/queues?columns=name,vhost,leader"
        )
        leaders = [q.get("leader") for q in queues if q["name"] in (INGEST_QUEUE, MATCHER_QUEUE)]
        broker = self._cluster.broker
        known = [name for name in leaders if name in {node.node for node in broker.nodes}]
        if not known:
            raise BackendError(f"no leader found for {INGEST_QUEUE} and {MATCHER_QUEUE}")
        return broker.index_of(max(set(known), key=known.count))

    async def restart_broker(self, mode: str = "app") -> str:
        """SIGKILL the leading node; it is started again in the background after
        `node_down_seconds` (`settle` waits until it has rejoined), so that the
        database failover can happen meanwhile."""
        broker = self._cluster.broker
        index = await self._leader_index()
        node = broker.nodes[index].node
        failover = {"backend": "rabbitmq", "node": node, "at": time.monotonic()}
        self.failovers.append(failover)
        await asyncio.to_thread(broker.kill, index)
        self._returns.append(asyncio.create_task(self._bring_back(index, failover)))
        return f"SIGKILL {node} (leader of {INGEST_QUEUE}/{MATCHER_QUEUE})"

    async def _bring_back(self, index: int, failover: dict[str, Any]) -> None:
        broker = self._cluster.broker
        down_until = time.monotonic() + self.node_down_seconds
        if self.status_env is not None:
            failover["status_while_down"] = await status_exit_code(self.status_env)
        await asyncio.sleep(max(0.0, down_until - time.monotonic()))
        try:
            booted = await asyncio.to_thread(broker.restart, index, REJOIN_TIMEOUT_SECONDS)
        except Exception as exc:
            failover["rejoin_error"] = str(exc)[:300]
            return
        # From the kill: the node booted (its AMQP port answers), and it rejoined.
        failover["started_after_seconds"] = round(down_until - failover["at"] + booted, 1)
        failover["rejoined_after_seconds"] = round(time.monotonic() - failover["at"], 1)

    async def settle(self) -> None:
        await asyncio.gather(*self._returns)

    async def restart_database(self) -> str:
        self.failovers.append({"backend": "postgresql", "at": time.monotonic()})
        await asyncio.to_thread(self._cluster.database.fail_over)
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 120)
        return "primary stopped (pg_ctl stop -m immediate), standby promoted (pg_ctl promote)"


async def status_exit_code(env: dict[str, str]) -> int:
    """`verwijsindex status`'s exit code with these settings (1: it could not answer)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "verwijsindex"),
        "status",
        "--json",
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


def longest_outages(log_files: Iterable[Path]) -> dict[str, float]:
    """Per backend, the longest a service process was without it, from the
    `backend_available` lines (each says how long the backend was away for it)."""
    longest: dict[str, float] = {}
    for path in log_files:
        with path.open("rb") as lines:
            for raw in lines:
                if b'"backend_available"' not in raw:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                backend, seconds = line.get("backend"), line.get("unavailable_seconds")
                if isinstance(backend, str) and isinstance(seconds, int | float):
                    longest[backend] = max(longest.get(backend, 0.0), float(seconds))
    return longest


def failover_seconds(
    failovers: list[dict[str, Any]], answers_at: Iterable[float]
) -> list[dict[str, Any]]:
    """Each failover with the time from it to the first answer received after it."""
    moments = sorted(answers_at)
    out = []
    for failover in failovers:
        after = next((t for t in moments if t > failover["at"]), None)
        seconds = None if after is None else round(after - failover["at"], 2)
        out.append({k: v for k, v in failover.items() if k != "at"} | {"seconds": seconds})
    return out
