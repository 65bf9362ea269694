"""Wiring of the portal service: the web app (uvicorn, on VI_PORTAL_PORT), the
portal's own broker connection for its mailboxes and requests, and the relay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette

from services.portal import accounts, coordination, metrics, readmodel
from services.portal.bus import PortalBus
from services.portal.gateway import Gateway
from services.portal.policy import LoginPolicy
from services.portal.settings import PortalSettings
from services.portal.web.app import create_app
from services.portal.web.context import Portal
from shared.clock import utcnow
from shared.logs import describe_error, get_logger
from shared.service import Runtime

log = get_logger(__name__)

HOUSEKEEPING_SECONDS = 60.0


class _Server(uvicorn.Server):
    """uvicorn inside the service's own event loop: the service handles SIGTERM."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def policy_of(settings: PortalSettings) -> LoginPolicy:
    return LoginPolicy(
        max_failures=settings.max_failed_logins,
        lock_minutes=settings.lock_minutes,
        idle_minutes=settings.idle_minutes,
        max_address_failures=settings.max_failed_logins_per_address,
        address_window_minutes=settings.address_window_minutes,
    )


def portal_for(runtime: Runtime, settings: PortalSettings) -> Portal:
    broker_user = urlsplit(settings.amqp_url).username or "portal"
    return Portal(
        settings=settings,
        pool=runtime.pool,
        gateway=Gateway(runtime.pool, broker_user),
        region=runtime.region,
        policy=policy_of(settings),
    )


async def setup(runtime: Runtime) -> None:
    await start(runtime, PortalSettings.from_env())


async def start(runtime: Runtime, settings: PortalSettings, *, serve: bool = True) -> Starlette:
    """Run the portal's background work on `runtime`; with `serve`, also the web server
    (the tests drive the returned app in-process instead)."""
    portal = portal_for(runtime, settings)
    app = create_app(portal)
    bus = PortalBus(
        settings, runtime.settings.amqp_ca_file, runtime.pool, runtime.region, portal.gateway
    )
    runtime.checks["portal_broker"] = lambda: bus.connected
    metrics.watch()
    runtime.background(bus.run)
    runtime.background(portal.gateway.relay_forever)

    async def housekeeping() -> None:
        """Lapsed sessions, and meldingen and matches the index no longer keeps either."""
        while True:
            try:
                async with runtime.pool.acquire() as conn:
                    await accounts.forget_lapsed_sessions(conn, portal.policy, utcnow())
                    await accounts.forget_ended_address_windows(conn, portal.policy, utcnow())
                    async with conn.transaction():
                        await readmodel.forget_expired(conn, utcnow())
                        await coordination.forget_gone_matches(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("portal_housekeeping_failed", error=describe_error(exc, 300))
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    runtime.background(housekeeping)
    runtime.background(_close_on_cancel(bus))
    if not serve:
        return app
    server = _Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            proxy_headers=True,
            timeout_graceful_shutdown=5,
        )
    )

    async def run_server() -> None:
        try:
            await server.serve()
        except asyncio.CancelledError:
            server.should_exit = True
            await server.shutdown()
            raise

    runtime.background(run_server)
    log.info("portal_listening", host=settings.host, port=settings.port, url=settings.base_url)
    return app


def _close_on_cancel(bus: PortalBus) -> Callable[[], Coroutine[Any, Any, None]]:
    """A background job that closes the portal's broker connection at shutdown."""

    async def wait() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await bus.close()

    return wait
