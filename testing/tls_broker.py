"""A RabbitMQ node of its own with a TLS listener, for the TLS tests.

It runs Debian's RabbitMQ from a temporary directory, on free ports, with its own
config, data, logs and Erlang cookie, so the machine's default node (5672, shared
with CI) is never touched. TLS only (no plain listener): verify_peer,
fail_if_no_peer_cert, EXTERNAL logins mapped from the certificate's common name, and
the management API on a port of its own (guest/guest from localhost).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from testing.ports import free_port
from testing.rabbit_node import BrokerNodeUnavailable, RabbitNode


class TlsBrokerUnavailable(BrokerNodeUnavailable):
    pass


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


def _config(*, tls_port: int, management_port: int, certs: Path) -> dict[str, str]:
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
    return settings


@dataclass
class TlsBrokerNode:
    rabbit: RabbitNode
    tls_port: int
    management_port: int

    @classmethod
    def prepare(cls, directory: Path, certs: Path) -> TlsBrokerNode:
        """Lay out the node's files; `certs` holds ca.pem, server.pem, server.key."""
        tls_port, management_port = free_port(), free_port()
        try:
            rabbit = RabbitNode.prepare(
                directory,
                name=f"vi-tls-{secrets.token_hex(4)}",
                config=_config(tls_port=tls_port, management_port=management_port, certs=certs),
                plugins=("rabbitmq_auth_mechanism_ssl", "rabbitmq_management"),
            )
        except BrokerNodeUnavailable as exc:
            raise TlsBrokerUnavailable(str(exc)) from None
        return cls(rabbit, tls_port, management_port)

    def start(self) -> None:
        try:
            self.rabbit.start()
        except BrokerNodeUnavailable as exc:
            raise TlsBrokerUnavailable(f"the TLS node: {exc}") from None

    def stop(self) -> None:
        """Stop the node (also half-started) and remove its directory."""
        self.rabbit.stop()

    def amqps_url(self, user: str, vhost: str = "/", *, password: str | None = None) -> str:
        """A URL for this node: a certificate login (EXTERNAL) unless a password is given.
        The host is `localhost`, the name in the server certificate."""
        login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        query = "" if password else "?auth=external"
        return f"amqps://{login}@localhost:{self.tls_port}/{quote(vhost, safe='')}{query}"

    @property
    def management_url(self) -> str:
        return f"http://guest:guest@127.0.0.1:{self.management_port}"
