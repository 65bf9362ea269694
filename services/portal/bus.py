"""The portal's own broker connection (its login, not the services'): it publishes
through it and reads the portal mailboxes. Connected in the background with backoff,
so the web pages work while the broker is away (requests wait in `portal_message`)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from services.portal.gateway import Gateway
from services.portal.mailboxes import Mailboxes
from services.portal.settings import PortalSettings
from shared.amqp.connection import connect
from shared.amqp.publisher import Publisher
from shared.amqp.tls import client_context
from shared.logs import describe_error, get_logger
from shared.region.store import RegionCache

log = get_logger(__name__)

CONNECT_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0)


class PortalBus:
    def __init__(
        self,
        settings: PortalSettings,
        ca_file: Any,
        pool: asyncpg.Pool[Any],
        region: RegionCache,
        gateway: Gateway,
    ) -> None:
        self._settings = settings
        self._ca_file = ca_file
        self._pool = pool
        self._region = region
        self._gateway = gateway
        self.connection: AbstractRobustConnection | None = None
        self.mailboxes: Mailboxes | None = None
        self._publisher: Publisher | None = None

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.is_closed

    async def _connect(self) -> None:
        attempt = 0
        while True:
            try:
                ssl_context = (
                    client_context(
                        self._ca_file, self._settings.amqp_cert_file, self._settings.amqp_key_file
                    )
                    if self._settings.amqp_url.startswith("amqps://")
                    else None
                )
                self.connection = await connect(
                    self._settings.amqp_url, "portal", ssl_context=ssl_context
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = CONNECT_BACKOFF_SECONDS[min(attempt, len(CONNECT_BACKOFF_SECONDS) - 1)]
                if attempt == 0:
                    log.warning("portal_broker_unavailable", error=describe_error(exc, 300))
                attempt += 1
                await asyncio.sleep(delay)
        self._publisher = Publisher(self.connection)
        await self._publisher.start()
        self._gateway.publisher = self._publisher
        self.mailboxes = Mailboxes(self.connection, self._pool)
        log.info("portal_broker_connected")

    async def run(self) -> None:
        """Connect, then keep reading every portal mailbox the applied region names."""
        await self._connect()
        assert self.mailboxes is not None
        while True:
            try:
                config = await self._region.get()
                await self.mailboxes.read(config.portal_mailboxes)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("portal_mailbox_scan_failed", error=describe_error(exc, 300))
            await asyncio.sleep(self._settings.mailbox_scan_seconds)

    async def close(self) -> None:
        self._gateway.publisher = None
        if self.mailboxes is not None:
            await self.mailboxes.close()
        if self._publisher is not None:
            await self._publisher.close()
        if self.connection is not None:
            await self.connection.close()
