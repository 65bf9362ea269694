"""A RabbitMQ cluster and a PostgreSQL primary with a synchronous standby, on this one
machine, beside its default broker and database (never touching them).

- Three Debian RabbitMQ nodes (testing/rabbit_node.py) with one Erlang cookie, clustered
  with `join_cluster`, each with its own node name, ports, config and data directory,
  and the management plugin. Each VM gets one scheduler and no busy waiting: four
  Erlang VMs share two cores here.
- PostgreSQL (`initdb`, `pg_basebackup`) as the `postgres` user: a primary whose
  `synchronous_standby_names` names the standby, so that a commit is on both before it
  returns, and the standby streaming from it. A failover stops the primary and promotes
  the standby; the services find the new primary through a multi-host URL with
  `target_session_attrs=read-write`.

Used by the failover tests (tests/cluster/), the chaos run's cluster mode and, for
trying things by hand, `scripts/cluster.sh up|status|down`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.amqp.management import Management, ManagementError
from testing.ports import free_port
from testing.rabbit_node import RabbitNode

PG_BIN = Path("/usr/lib/postgresql/15/bin")
STANDBY_NAME = "vi_standby"
# One scheduler, no busy waiting, few async threads: the nodes idle on 2 shared cores.
ERL_ARGS = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none +A 4"


class ClusterError(RuntimeError):
    pass


def _run(argv: list[str], *, timeout: float = 120) -> str:
    result = subprocess.run(  # noqa: S603 (fixed programs, our own arguments)
        argv, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")[-1500:]
        raise ClusterError(f"{' '.join(argv)} exited {result.returncode}: {output}")
    return result.stdout.decode(errors="replace")


def _as_postgres(*argv: str, timeout: float = 120) -> str:
    return _run(["runuser", "-u", "postgres", "--", *argv], timeout=timeout)


def _accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def new_directory() -> Path:
    """A directory the `postgres` user can reach (pytest's own are root-only)."""
    directory = Path(tempfile.mkdtemp(prefix="vi-cluster-"))
    directory.chmod(0o755)
    return directory


@dataclass
class BrokerCluster:
    """Three RabbitMQ nodes clustered on this machine."""

    directory: Path
    nodes: list[RabbitNode]
    amqp_ports: list[int]
    management_ports: list[int]

    @classmethod
    def prepare(cls, directory: Path, size: int = 3) -> BrokerCluster:
        cookie = secrets.token_hex(16).upper()
        tag = secrets.token_hex(3)
        nodes, amqp_ports, management_ports = [], [], []
        for number in range(1, size + 1):
            amqp_port, management_port = free_port(), free_port()
            nodes.append(
                RabbitNode.prepare(
                    directory / f"rabbit{number}",
                    name=f"vi-cluster-{tag}-{number}",
                    config={
                        "listeners.tcp.default": f"127.0.0.1:{amqp_port}",
                        "management.tcp.ip": "127.0.0.1",
                        "management.tcp.port": str(management_port),
                        "collect_statistics_interval": "1000",
                        "disk_free_limit.absolute": "100MB",
                        "log.console": "false",
                        # info: a node's boot steps, to see where a slow restart waits
                        "log.file.level": "info",
                    },
                    plugins=("rabbitmq_management",),
                    cookie=cookie,
                    erl_args=ERL_ARGS,
                )
            )
            amqp_ports.append(amqp_port)
            management_ports.append(management_port)
        return cls(directory, nodes, amqp_ports, management_ports)

    def start(self) -> None:
        """Start every node and join the others to the first."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_started()
        with ThreadPoolExecutor() as pool:
            list(pool.map(self._join, self.nodes[1:]))

    def _join(self, node: RabbitNode) -> None:
        for args in (("stop_app",), ("join_cluster", self.nodes[0].node), ("start_app",)):
            result = node.ctl(*args, timeout=120)
            if result.returncode != 0:
                raise ClusterError(
                    f"{node.node}: rabbitmqctl {' '.join(args)}: "
                    f"{(result.stdout + result.stderr).decode(errors='replace')[-800:]}"
                )

    def amqp_url(self, login: str = "guest:guest", vhost: str = "/") -> str:
        """Every node, comma-separated, as VI_AMQP_URL takes them (`login` is
        user:password, URL-quoted)."""
        path = "" if vhost == "/" else quote(vhost, safe="")
        return ",".join(f"amqp://{login}@127.0.0.1:{port}/{path}" for port in self.amqp_ports)

    def management_url(self, index: int = 0) -> str:
        return f"http://guest:guest@127.0.0.1:{self.management_ports[index]}"

    def management_urls(self) -> str:
        """Every node's management API, comma-separated, as VI_MANAGEMENT_URL takes them."""
        return ",".join(self.management_url(index) for index in range(len(self.nodes)))

    def index_of(self, node_name: str) -> int:
        return [node.node for node in self.nodes].index(node_name)

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, index: int, timeout: float = 300) -> float:
        """Start a stopped or killed node again and wait until it has rejoined the
        cluster: another node's management API reports it running. Returns the seconds
        until its own boot was done (it answered on its AMQP port).

        Watched through the management API, not `rabbitmqctl`: each CLI call boots an
        Erlang VM of its own, which took 20 s and more on this machine under a chaos
        run's load, so a 30 s CLI check could fail again and again while the node was
        long back."""
        node = self.nodes[index]
        witness = (index + 1) % len(self.nodes)
        began = time.monotonic()
        deadline = began + timeout
        node.launch()
        assert node.process is not None
        booted: float | None = None
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise ClusterError(f"{node.node} exited: {node.log_tail()}")
            if booted is None and _accepts(self.amqp_ports[index]):
                booted = time.monotonic() - began
            if booted is not None:
                state = self._node_state(witness, node.node)
                if state.get("running"):
                    node.beam_pid = int(state["os_pid"]) if state.get("os_pid") else None
                    return booted
            time.sleep(1)
        raise ClusterError(
            f"{node.node} did not rejoin within {timeout:.0f} s "
            f"({'booted' if booted is not None else 'not booted'}): {node.log_tail()[-600:]}"
        )

    def _node_state(self, witness: int, node_name: str) -> dict[str, Any]:
        """What node `witness` knows of node `node_name` ({} when it cannot say)."""
        path = f"/nodes/{quote(node_name, safe='')}?memory=false&binary=false"
        try:
            return dict(asyncio.run(Management(self.management_url(witness)).call("GET", path)))
        except ManagementError:
            return {}

    def running_nodes(self, index: int = 0) -> list[str]:
        out = self.nodes[index].ctl("cluster_status", "--formatter", "json", timeout=60)
        if out.returncode != 0:
            return []
        return list(json.loads(out.stdout.decode())["running_nodes"])

    def save_logs(self, destination: Path) -> None:
        """Copy every node's log and console output to `destination/<node>/`."""
        for node in self.nodes:
            target = destination / node.node
            target.mkdir(parents=True, exist_ok=True)
            for source in [node.directory / "server.out", *(node.directory / "log").glob("*")]:
                if source.is_file():
                    shutil.copy2(source, target / source.name)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop(remove=False)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class DatabasePair:
    """A PostgreSQL primary and its synchronous streaming standby."""

    directory: Path
    primary_port: int = field(default_factory=free_port)
    standby_port: int = field(default_factory=free_port)
    promoted: bool = False

    @property
    def primary_dir(self) -> Path:
        return self.directory / "primary"

    @property
    def standby_dir(self) -> Path:
        return self.directory / "standby"

    def url(self, database: str = "postgres") -> str:
        """Both hosts; a client picks whichever accepts writes."""
        hosts = f"127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        _run(["chown", "postgres:postgres", str(self.directory)])
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.primary_dir), "-A", "trust", "-U", "postgres"
        )
        with (self.primary_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"port = {self.primary_port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\n"
                "max_connections = 300\n"
                "shared_buffers = 64MB\n"
                "fsync = off\n"  # a test machine: durability is the standby's job here
                f"synchronous_standby_names = '{STANDBY_NAME}'\n"
            )
        self._pg_ctl(self.primary_dir, "start")
        _as_postgres(
            str(PG_BIN / "pg_basebackup"),
            "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.standby_dir), "-R", "-X", "stream",
        )  # fmt: skip
        with (self.standby_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"port = {self.standby_port}\n"
                # Promoted, it has no standby of its own to wait for.
                "synchronous_standby_names = ''\n"
                f"primary_conninfo = 'host=127.0.0.1 port={self.primary_port} "
                f"user=postgres application_name={STANDBY_NAME}'\n"
            )
        self._pg_ctl(self.standby_dir, "start")
        self._wait_for_sync_standby()

    def _wait_for_sync_standby(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        query = "SELECT sync_state FROM pg_stat_replication"
        while time.monotonic() < deadline:
            if self.psql(self.primary_port, query).strip() == "sync":
                return
            time.sleep(0.5)
        raise ClusterError("the standby did not become a synchronous standby in time")

    def psql(self, port: int, sql: str) -> str:
        return _as_postgres(
            str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "-d", "postgres", "-At", "-c", sql,
        )  # fmt: skip

    def _pg_ctl(self, data: Path, action: str, *extra: str) -> str:
        return _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"),
            "-w", "-t", "60", *extra, action,
        )  # fmt: skip

    def fail_over(self) -> None:
        """The primary goes down hard; the standby is promoted to take its place."""
        self._pg_ctl(self.primary_dir, "stop", "-m", "immediate")
        self._pg_ctl(self.standby_dir, "promote")
        self.promoted = True

    def status(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for role, port in (("primary", self.primary_port), ("standby", self.standby_port)):
            try:
                in_recovery = self.psql(port, "SELECT pg_is_in_recovery()").strip()
            except ClusterError:
                state[role] = {"port": port, "running": False}
                continue
            state[role] = {"port": port, "running": True, "read_only": in_recovery == "t"}
        return state

    def stop(self) -> None:
        for data in (self.standby_dir, self.primary_dir):
            if (data / "postmaster.pid").exists():
                try:
                    self._pg_ctl(data, "stop", "-m", "fast")
                except ClusterError:
                    self._pg_ctl(data, "stop", "-m", "immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class ClusterBackends:
    broker: BrokerCluster
    database: DatabasePair
    directory: Path

    @classmethod
    def prepare(cls, directory: Path, nodes: int = 3) -> ClusterBackends:
        return cls(
            BrokerCluster.prepare(directory / "rabbitmq", nodes),
            DatabasePair(directory / "postgres"),
            directory,
        )

    def start(self) -> None:
        try:
            with ThreadPoolExecutor() as pool:
                started = [pool.submit(self.database.start), pool.submit(self.broker.start)]
                for future in started:
                    future.result()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        try:
            self.broker.stop()
        finally:
            self.database.stop()
            shutil.rmtree(self.directory, ignore_errors=True)

    def environment(self, database: str = "postgres") -> dict[str, str]:
        return {
            "VI_AMQP_URL": self.broker.amqp_url(),
            "VI_MANAGEMENT_URL": self.broker.management_urls(),
            "VI_DATABASE_URL": self.database.url(database),
        }


# scripts/cluster.sh: the state of a cluster started by `up`, for `status` and `down`.

_ENV_KEYS = ("HOME", "ERL_EPMD_ADDRESS", "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")


def _save(backends: ClusterBackends, state_file: Path) -> None:
    broker, database = backends.broker, backends.database
    state = {
        "directory": str(broker.directory.parent),
        "nodes": [
            {
                "directory": str(node.directory),
                "node": node.node,
                "beam_pid": node.beam_pid,
                "env": {
                    k: v for k, v in node.env.items() if k.startswith("RABBITMQ_") or k in _ENV_KEYS
                },
            }
            for node in broker.nodes
        ],
        "amqp_ports": broker.amqp_ports,
        "management_ports": broker.management_ports,
        "primary_port": database.primary_port,
        "standby_port": database.standby_port,
    }
    state_file.write_text(json.dumps(state, indent=2))


def _load(state_file: Path) -> ClusterBackends:
    state = json.loads(state_file.read_text())
    root = Path(state["directory"])
    nodes = [
        RabbitNode(
            Path(n["directory"]), n["node"], {**os.environ, **n["env"]}, beam_pid=n["beam_pid"]
        )
        for n in state["nodes"]
    ]
    broker = BrokerCluster(root / "rabbitmq", nodes, state["amqp_ports"], state["management_ports"])
    database = DatabasePair(root / "postgres", state["primary_port"], state["standby_port"])
    return ClusterBackends(broker, database, root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster.sh",
        description="Three clustered RabbitMQ nodes and a PostgreSQL primary with a "
        "synchronous standby, on free ports beside the machine's own.",
    )
    parser.add_argument("action", choices=("up", "status", "down"))
    parser.add_argument(
        "--state",
        type=Path,
        default=Path("var/cluster.json"),
        help="where `up` notes what it started",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=3,
        help="RabbitMQ nodes for `up` (1 gives a private single node, to compare with)",
    )
    args = parser.parse_args(argv)
    state_file: Path = args.state
    if args.action == "up":
        if state_file.exists():
            print(f"a cluster is already up ({state_file}); `scripts/cluster.sh down` first")
            return 1
        backends = ClusterBackends.prepare(new_directory(), args.nodes)
        backends.start()
        state_file.parent.mkdir(parents=True, exist_ok=True)
        _save(backends, state_file)
        backends.database.psql(backends.database.primary_port, "CREATE DATABASE verwijsindex")
        print("# up; for the services and the CLI:")
        for key, value in backends.environment("verwijsindex").items():
            print(f"export {key}='{value}'")
        return 0
    if not state_file.exists():
        print(f"no cluster is up (no {state_file}); start one with `scripts/cluster.sh up`")
        return 1
    backends = _load(state_file)
    if args.action == "status":
        print(json.dumps({
            "rabbitmq_running_nodes": backends.broker.running_nodes(),
            "amqp_url": backends.broker.amqp_url(),
            "postgresql": backends.database.status(),
        }, indent=2))  # fmt: skip
        return 0
    backends.stop()
    state_file.unlink()
    print("down: every node stopped and its files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
