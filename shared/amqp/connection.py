"""A robust (auto-reconnecting) broker connection, named so it can be found in
`rabbitmqctl list_connections`; over TLS when the URL is `amqps://`.

With several nodes in the URL (see `shared.amqp.nodes`) the connection starts at the
first node that answers and, each time its connection is lost or an attempt fails,
moves on to the next node; aio-pika's robust connection then restores its channels,
consumers and declarations there as it would on the same node.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from yarl import URL

from shared.amqp import compat
from shared.amqp.nodes import NodeRotation, first_node, split_nodes
from shared.amqp.tls import TlsSettingsError, client_context
from shared.backends import UNAVAILABLE_ERRORS
from shared.settings import Settings

RECONNECT_SECONDS: Final = 2
# A node that is gone from the network does not refuse, it stays silent: give up on it
# after this long and try the next.
CONNECT_TIMEOUT_SECONDS: Final = 10


class MultiNodeConnection(aio_pika.RobustConnection):
    """A robust connection that reconnects to the next node of its cluster."""

    def __init__(
        self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any
    ) -> None:
        self.nodes: NodeRotation = kwargs.pop("nodes")
        super().__init__(url, loop, **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # Called both when an open connection is lost and when an attempt fails.
        await super()._on_connection_close(closing)
        if not (self._close_called or self.is_closed) and len(self.nodes.nodes) > 1:
            self.url = URL(self.nodes.advance())


async def connect(
    amqp_url: str, name: str, *, ssl_context: ssl.SSLContext | None = None
) -> AbstractRobustConnection:
    """Connect to `amqp_url`: the first of its nodes that answers. An `amqps://` URL
    uses `ssl_context` (the system's trust store when None); `?auth=external` in the URL
    logs in by client certificate. Raises the last node's error when none answers."""
    compat.install_wire()  # a partner's odd bytes must not break our connection
    nodes = split_nodes(amqp_url)
    failure: BaseException | None = None
    for start, node in enumerate(nodes):
        connection = MultiNodeConnection(
            URL(node),
            client_properties={"connection_name": name},
            reconnect_interval=RECONNECT_SECONDS,
            ssl_context=ssl_context,
            nodes=NodeRotation(nodes, start),
        )
        try:
            await connection.connect(timeout=CONNECT_TIMEOUT_SECONDS)
            return connection
        except UNAVAILABLE_ERRORS as exc:
            failure = exc
            await connection.close()
    assert failure is not None
    raise failure


def broker_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the services' own broker URL; None for plain `amqp://`."""
    url = urlsplit(first_node(settings.amqp_url))
    if "auth=external" in url.query.lower():
        if url.scheme != "amqps" or settings.amqp_cert_file is None:
            raise TlsSettingsError(
                "a certificate login (?auth=external) needs an amqps:// URL and VI_AMQP_CERT_FILE"
            )
        if not url.username:
            raise TlsSettingsError(
                "with ?auth=external, VI_AMQP_URL must still name the user "
                "(amqps://USER@host/…): the common name of VI_AMQP_CERT_FILE"
            )
    if url.scheme != "amqps":
        return None
    return client_context(settings.amqp_ca_file, settings.amqp_cert_file, settings.amqp_key_file)


async def connect_broker(settings: Settings, name: str) -> AbstractRobustConnection:
    """The services' and the CLI's connection: `VI_AMQP_URL` with its TLS files."""
    return await connect(settings.amqp_url, name, ssl_context=broker_tls(settings))


def vhost_of(amqp_url: str) -> str:
    """The virtual host an AMQP URL names ('/' when it names none); with several
    nodes, the first node's."""
    path = urlsplit(first_node(amqp_url)).path.lstrip("/")
    return unquote(path) if path else "/"
