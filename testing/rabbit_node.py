"""A RabbitMQ node of the tests' own, beside the machine's default one.

Debian's RabbitMQ run from a directory of its own: its own node name, ports, config
file, plugins, data (mnesia), logs and Erlang cookie, so the machine's default node
(5672, shared with CI) is never touched. The TLS tests start one (testing/tls_broker.py),
the cluster harness three that share a cookie (testing/cluster_backends.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from testing.ports import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_SECONDS = 120


class BrokerNodeUnavailable(RuntimeError):
    pass


def config_text(settings: Mapping[str, str]) -> str:
    """rabbitmq.conf (sysctl format) from key/value pairs."""
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


@dataclass
class RabbitNode:
    directory: Path
    node: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    beam_pid: int | None = None  # the Erlang VM itself, for a SIGKILL

    @classmethod
    def prepare(
        cls,
        directory: Path,
        *,
        name: str,
        config: Mapping[str, str],
        plugins: tuple[str, ...],
        cookie: str | None = None,
        erl_args: str = "",
    ) -> RabbitNode:
        """Lay out the node's files; `cookie` is shared by the nodes of one cluster."""
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise BrokerNodeUnavailable(f"Debian's RabbitMQ is not installed ({RABBITMQ_BIN})")
        directory.mkdir(parents=True, exist_ok=True)
        node = f"{name}@localhost"
        (directory / "rabbitmq.conf").write_text(config_text(config))
        (directory / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        (directory / "rabbitmq-env.conf").write_text("")  # not the machine's /etc one
        cookie_file = directory / ".erlang.cookie"
        if cookie_file.exists():
            cookie_file.chmod(0o600)
        cookie_file.write_text(cookie or secrets.token_hex(16).upper())
        cookie_file.chmod(0o400)
        env = {
            **os.environ,
            "HOME": str(directory),  # the Erlang cookie of this node and its CLI calls
            "ERL_EPMD_ADDRESS": "127.0.0.1",  # should this node be the one to start epmd
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_MNESIA_DIR": str(directory / "mnesia" / node),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        }
        if erl_args:
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = erl_args
        return cls(directory, node, env)

    def launch(self) -> None:
        """Start the node without waiting for it (see `wait_started`)."""
        log = (self.directory / "server.out").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 (fixed program, our own arguments)
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_started(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerNodeUnavailable(f"{self.node} exited: {self.log_tail()}")
            if self.ctl("await_startup", "--timeout", "5", timeout=30).returncode == 0:
                self.beam_pid = self._os_pid()
                return
            time.sleep(0.5)
        raise BrokerNodeUnavailable(f"{self.node} did not start in time: {self.log_tail()}")

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def _os_pid(self) -> int | None:
        result = self.ctl("eval", "os:getpid().", timeout=30)
        text = result.stdout.decode().strip().strip('"')
        return int(text) if result.returncode == 0 and text.isdigit() else None

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM: a crash, no goodbye to its peers."""
        if self.beam_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.beam_pid, signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.beam_pid = None

    def stop(self, *, remove: bool = True) -> None:
        """Stop the node (also half-started); remove its directory unless told not to."""
        if self.process is not None and self.process.poll() is None:
            self.ctl("stop", timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        elif self.process is None and self.beam_pid is not None:
            # Started by another process (scripts/cluster.sh up): stop it by name.
            self.ctl("stop", timeout=60)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)

    def ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
        return self.tool("rabbitmqctl", *args, timeout=timeout)

    def tool(self, program: str, *args: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
        """Run one of the node's CLI tools (rabbitmqctl, rabbitmq-queues, ...) on it."""
        try:
            return subprocess.run(  # noqa: S603 (fixed program, our own arguments)
                [str(RABBITMQ_BIN / program), "-n", self.node, *args],
                env=self.env,
                cwd=self.directory,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 1)

    def log_tail(self) -> str:
        out = self.directory / "server.out"
        return out.read_text(errors="replace")[-2000:] if out.exists() else "(no output)"
