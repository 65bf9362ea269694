"""A robust (auto-reconnecting) broker connection, named so it can be found in
`rabbitmqctl list_connections`."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from shared.amqp import wire


async def connect(amqp_url: str, name: str) -> AbstractRobustConnection:
    wire.install()  # a partner's odd bytes must not break our connection
    return await aio_pika.connect_robust(
        amqp_url, client_properties={"connection_name": name}, reconnect_interval=2
    )


def vhost_of(amqp_url: str) -> str:
    """The virtual host an AMQP URL names ('/' when it names none)."""
    path = urlsplit(amqp_url).path.lstrip("/")
    return unquote(path) if path else "/"
