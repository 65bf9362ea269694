"""A robust (auto-reconnecting) broker connection, named so it can be found in
`rabbitmqctl list_connections`; over TLS when the URL is `amqps://`."""

from __future__ import annotations

import ssl
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from shared.amqp import wire
from shared.amqp.tls import TlsSettingsError, client_context
from shared.settings import Settings


async def connect(
    amqp_url: str, name: str, *, ssl_context: ssl.SSLContext | None = None
) -> AbstractRobustConnection:
    """Connect to `amqp_url`. An `amqps://` URL uses `ssl_context` (the system's trust
    store when None); `?auth=external` in the URL logs in by client certificate."""
    wire.install()  # a partner's odd bytes must not break our connection
    return await aio_pika.connect_robust(
        amqp_url,
        client_properties={"connection_name": name},
        reconnect_interval=2,
        ssl_context=ssl_context,
    )


def broker_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the services' own broker URL; None for plain `amqp://`."""
    url = urlsplit(settings.amqp_url)
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
    """The virtual host an AMQP URL names ('/' when it names none)."""
    path = urlsplit(amqp_url).path.lstrip("/")
    return unquote(path) if path else "/"
