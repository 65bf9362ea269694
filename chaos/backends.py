"""The RabbitMQ and PostgreSQL the run talks to, and how to restart them.

*Shared* backends are the ones the machine already runs (the issue's commands:
`rabbitmqctl stop_app && rabbitmqctl start_app`, `pg_ctlcluster ... main restart`).
Restarting them drops every other client too, so while other work uses them the run
can bring *private* backends of its own instead (a RabbitMQ node and a PostgreSQL
cluster in a temporary directory, on other ports), restarted the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.amqp.connection import connect
from shared.amqp.management import Management, ManagementError
from shared.settings import Settings
from testing.ports import free_port


class BackendError(RuntimeError):
    pass


async def run_command(*argv: str, timeout: float = 120.0) -> str:
    """Run a command; its output, or BackendError with the output when it fails.

    The output goes to a file, not a pipe: a daemon the command leaves behind (a
    detached RabbitMQ node) could otherwise hold the pipe open for ever.
    """
    with tempfile.TemporaryFile() as output:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise BackendError(f"{' '.join(argv)}: no answer within {timeout:.0f} s") from None
        output.seek(0)
        text = output.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BackendError(f"{' '.join(argv)} exited {proc.returncode}: {text[-800:]}")
    return text


async def await_node(*node: str, timeout: float = 180.0) -> None:
    """Until a just started RabbitMQ node has booted (it registers a moment after
    `rabbitmq-server -detached` returns)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await run_command("rabbitmqctl", *node, "await_startup", timeout=timeout)
            return
        except BackendError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def wait_until_up(amqp_url: str, management_url: str, dsn: str, timeout: float) -> None:
    """Both backends answer: an AMQP login, the management API, a SQL query."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            connection = await connect(amqp_url, "chaos-wait")
            await connection.close()
            await Management(management_url).call("GET", "/overview")
            conn = await asyncpg.connect(dsn, timeout=3)
            await conn.fetchval("SELECT 1")
            await conn.close()
            return
        except (OSError, ConnectionError, ManagementError, asyncpg.PostgresError) as exc:
            last = exc
        except Exception as exc:  # aio-pika/aiormq raise their own connection errors
            last = exc
        await asyncio.sleep(0.5)
    raise BackendError(f"backends not answering after {timeout:.0f} s: {last}")


@dataclass
class Backends:
    """Where the backends are; `restart_*` restart them and wait until they answer."""

    amqp_url: str  # the services' own login, vhost '/'
    management_url: str
    database_url: str  # an administrative database ('postgres')
    kind: str = "shared"

    async def start(self) -> None:
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 60)

    async def stop(self) -> None:
        return None

    async def settle(self) -> None:
        """Until whatever a restart left going on in the background is done."""
        return None

    async def restart_broker(self, mode: str = "app") -> str:
        """`app`: stop and start the RabbitMQ application inside the running node (the
        gentle way); `node`: stop the whole node and start it again."""
        if mode == "node":
            await run_command("rabbitmqctl", "stop")
            await run_command("rabbitmq-server", "-detached")
            await await_node()
            command = "rabbitmqctl stop && rabbitmq-server -detached"
        else:
            await run_command("rabbitmqctl", "stop_app")
            await run_command("rabbitmqctl", "start_app")
            command = "rabbitmqctl stop_app && rabbitmqctl start_app"
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 180)
        return command

    async def restart_database(self) -> str:
        versions = sorted(os.listdir("/etc/postgresql"))
        if not versions:
            raise BackendError("no PostgreSQL cluster under /etc/postgresql")
        argv = ("pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "restart")
        await run_command(*argv)
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 120)
        return " ".join(argv)


def shared_backends() -> Backends:
    base = Settings.from_env()
    admin = urlunsplit(urlsplit(base.database_url)._replace(path="/postgres"))
    return Backends(base.amqp_url, base.management_url, admin, "shared")


_PG_BIN_ROOT = Path("/usr/lib/postgresql")


def _pg_bin() -> Path:
    versions = sorted((p for p in _PG_BIN_ROOT.iterdir() if (p / "bin/pg_ctl").exists()), key=str)
    if not versions:
        raise BackendError("no PostgreSQL binaries under /usr/lib/postgresql")
    return versions[-1] / "bin"


@dataclass
class PrivateBackends(Backends):
    """A RabbitMQ node and a PostgreSQL cluster of the run's own (root only: they run
    as the `rabbitmq` and `postgres` system users)."""

    amqp_port: int = 5673
    management_port: int = 15673
    dist_port: int = 25673
    pg_port: int = 5433
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vi-chaos-")))

    @classmethod
    def create(cls) -> PrivateBackends:
        """On free ports, and so under a node name of its own: two runs at once (or a
        run beside the tests' own nodes) never stop each other's broker."""
        ports: set[int] = set()
        while len(ports) < 4:  # each free now; distinct, as all four are bound at once
            ports.add(free_port())
        amqp_port, management_port, dist_port, pg_port = ports
        return cls(
            amqp_url=f"amqp://guest:guest@127.0.0.1:{amqp_port}/",
            management_url=f"http://guest:guest@127.0.0.1:{management_port}",
            database_url=f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
            kind="private",
            amqp_port=amqp_port,
            management_port=management_port,
            dist_port=dist_port,
            pg_port=pg_port,
        )

    @property
    def node(self) -> str:
        return f"vichaos{self.amqp_port}@localhost"

    @property
    def _rabbit_env(self) -> str:
        d = self.root / "rabbitmq"
        env = {
            "HOME": "/var/lib/rabbitmq",
            "RABBITMQ_CONF_ENV_FILE": str(d / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        return " ".join(f"{k}={v}" for k, v in env.items())

    async def _as(self, user: str, command: str, timeout: float = 120.0) -> str:
        return await run_command("su", user, "-s", "/bin/sh", "-c", command, timeout=timeout)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if os.geteuid() != 0:
            raise BackendError("private backends need root (they run as rabbitmq and postgres)")
        d = self.root / "rabbitmq"
        for sub in ("mnesia", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "env.conf").write_text("")
        (d / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.amqp_port}\n"
            f"management.tcp.port = {self.management_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
        )
        pg = self.root / "postgres"
        pg.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        await run_command("chown", "-R", "rabbitmq:rabbitmq", str(d))
        await run_command("chown", "-R", "postgres:postgres", str(pg))
        await self._start_node()
        bin_dir = _pg_bin()
        await self._as("postgres", f"{bin_dir}/initdb -D {pg}/data -A trust -U postgres >/dev/null")
        await self._pg_ctl("start")
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 120)

    async def _pg_ctl(self, action: str) -> str:
        pg = self.root / "postgres"
        options = f"-p {self.pg_port} -k {pg} -c listen_addresses=127.0.0.1 -c max_connections=300"
        return await self._as(
            "postgres",
            f"{_pg_bin()}/pg_ctl -D {pg}/data -l {pg}/log -m fast -w -o '{options}' {action}",
        )

    async def restart_broker(self, mode: str = "app") -> str:
        if mode == "node":
            await run_command("rabbitmqctl", "-n", self.node, "stop")
            await self._start_node()
            command = f"rabbitmqctl -n {self.node} stop && rabbitmq-server -detached"
        else:
            await run_command("rabbitmqctl", "-n", self.node, "stop_app")
            await run_command("rabbitmqctl", "-n", self.node, "start_app")
            command = f"rabbitmqctl -n {self.node} stop_app && rabbitmqctl -n {self.node} start_app"
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 180)
        return command

    async def _start_node(self) -> None:
        d = self.root / "rabbitmq"
        await self._as(
            "rabbitmq",
            f"cd /var/lib/rabbitmq && {self._rabbit_env} "
            # The detached node keeps whatever stdout it is given: not our pipe.
            f"/usr/lib/rabbitmq/bin/rabbitmq-server -detached >>{d}/log/startup.log 2>&1",
        )
        await await_node("-n", self.node)

    async def restart_database(self) -> str:
        await self._pg_ctl("restart")
        await wait_until_up(self.amqp_url, self.management_url, self.database_url, 120)
        return "pg_ctl -m fast restart (private cluster)"

    async def stop(self) -> None:
        with contextlib.suppress(BackendError):
            await run_command("rabbitmqctl", "-n", self.node, "stop", timeout=60)
        with contextlib.suppress(BackendError):
            await self._pg_ctl("stop")
        shutil.rmtree(self.root, ignore_errors=True)
