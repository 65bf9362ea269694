"""A RabbitMQ node of its own with a TLS listener, for the TLS tests.

It runs Debian's RabbitMQ from a temporary directory, on free ports, with its own
config, data, logs and Erlang cookie, so the machine's default node (5672, shared
with CI) is never touched. TLS only (no plain listener): verify_peer,
fail_if_no_peer_cert, EXTERNAL logins mapped from the certificate's common name, and
the management API on a port of its own (guest/guest from localhost).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT_SECONDS = 120


class TlsBrokerUnavailable(RuntimeError):
    pass


def _free_port(below: int = 55_000) -> int:
    """A port nobody listens on now (below `below`: the CLI tools of a node use its
    distribution port + 10000)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port


# What makes the listener safe; deploy/rabbitmq/rabbitmq.conf must say the same
# (tests/unit/test_deploy_files.py checks it).
TLS_POLICY = {
    "ssl_options.verify": "verify_peer",
    "ssl_options.fail_if_no_peer_cert": "true",
    "ssl_options.versions.1": "tlsv1.3",
    "ssl_options.versions.2": "tlsv1.2",
    "auth_mechanisms.1": "EXTERNAL",
    "auth_mechanisms.2": "PLAIN",
    "ssl_cert_login_from": "common_name",
}


def _config(*, tls_port: int, management_port: int, certs: Path) -> str:
    settings = {
        "listeners.tcp": "none",
        "listeners.ssl.default": f"127.0.0.1:{tls_port}",
        "ssl_options.cacertfile": str(certs / "ca.pem"),
        "ssl_options.certfile": str(certs / "server.pem"),
        "ssl_options.keyfile": str(certs / "server.key"),
        **TLS_POLICY,
        "management.tcp.port": str(management_port),
        "collect_statistics_interval": "500",
        "log.console": "false",
        "log.file.level": "info",
    }
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


@dataclass
class TlsBrokerNode:
    directory: Path
    node: str
    tls_port: int
    management_port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def prepare(cls, directory: Path, certs: Path) -> TlsBrokerNode:
        """Lay out the node's files; `certs` holds ca.pem, server.pem, server.key."""
        if not (RABBITMQ_BIN / "rabbitmq-server").exists():
            raise TlsBrokerUnavailable(f"Debian's RabbitMQ is not installed ({RABBITMQ_BIN})")
        directory.mkdir(parents=True, exist_ok=True)
        tls_port, management_port = _free_port(), _free_port()
        node = f"vi-tls-{secrets.token_hex(4)}@localhost"
        (directory / "rabbitmq.conf").write_text(
            _config(tls_port=tls_port, management_port=management_port, certs=certs)
        )
        (directory / "enabled_plugins").write_text(
            "[rabbitmq_auth_mechanism_ssl,rabbitmq_management].\n"
        )
        (directory / "rabbitmq-env.conf").write_text("")  # not the machine's /etc one
        cookie = directory / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        env = {
            **os.environ,
            "HOME": str(directory),  # the Erlang cookie of this node and its CLI calls
            "ERL_EPMD_ADDRESS": "127.0.0.1",  # should this node be the one to start epmd
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_DIST_PORT": str(_free_port()),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_MNESIA_DIR": str(directory / "mnesia" / node),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
        }
        return cls(directory, node, tls_port, management_port, env)

    def start(self) -> None:
        log = (self.directory / "server.out").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (fixed program, our own arguments)
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TlsBrokerUnavailable(f"the TLS node exited: {self._log_tail()}")
            if self._ctl("await_startup", "--timeout", "5", timeout=30).returncode == 0:
                return
            time.sleep(0.5)
        raise TlsBrokerUnavailable(f"the TLS node did not start in time: {self._log_tail()}")

    def stop(self) -> None:
        """Stop the node (also half-started) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self._ctl("stop", timeout=60)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(  # noqa: S603 (fixed program, our own arguments)
                [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
                env=self.env,
                cwd=self.directory,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 1)

    def _log_tail(self) -> str:
        out = self.directory / "server.out"
        return out.read_text(errors="replace")[-2000:] if out.exists() else "(no output)"

    def amqps_url(self, user: str, vhost: str = "/", *, password: str | None = None) -> str:
        """A URL for this node: a certificate login (EXTERNAL) unless a password is given.
        The host is `localhost`, the name in the server certificate."""
        login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        query = "" if password else "?auth=external"
        return f"amqps://{login}@localhost:{self.tls_port}/{quote(vhost, safe='')}{query}"

    @property
    def management_url(self) -> str:
        return f"http://guest:guest@127.0.0.1:{self.management_port}"
