"""The composition root every service shares: broker, database, outbox relay, region
config, consumers, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from shared.amqp.connection import connect
from shared.amqp.consumer import Consumer, Handler
from shared.amqp.publisher import Publisher
from shared.amqp.topology import declare_core
from shared.db import migrate
from shared.db.outbox import Outbox
from shared.db.pool import create_pool
from shared.logs import configure_logging, get_logger
from shared.pseudonym import Pseudonymizer
from shared.region.store import RegionCache
from shared.settings import Settings

log = get_logger(__name__)

BackgroundJob = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Runtime:
    name: str
    settings: Settings
    connection: AbstractRobustConnection
    publisher: Publisher
    pool: asyncpg.Pool[Any]
    outbox: Outbox
    region: RegionCache
    pseudonyms: Pseudonymizer
    consumers: list[Consumer] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def open(cls, name: str, settings: Settings) -> Runtime:
        pool = await create_pool(settings.database_url, size=settings.db_pool_size)
        try:
            async with pool.acquire() as conn:
                await migrate.ensure_current(conn)
            connection = await connect(settings.amqp_url, name)
        except BaseException:
            await pool.close()
            raise
        async with connection.channel() as channel:
            await declare_core(
                channel,
                retry_delays_ms=settings.retry_delays_ms,
                delivery_limit=settings.delivery_limit,
            )
        publisher = Publisher(connection)
        await publisher.start()
        if settings.uses_dev_key:
            log.warning("dev_pseudonym_key", hint="set VI_PSEUDONYM_KEY outside development")
        return cls(
            name=name,
            settings=settings,
            connection=connection,
            publisher=publisher,
            pool=pool,
            outbox=Outbox(pool, publisher, grace_seconds=settings.outbox_grace_seconds),
            region=RegionCache(pool, settings.config_reload_seconds),
            pseudonyms=Pseudonymizer(settings.pseudonym_key),
        )

    def consume(self, queue: str, handler: Handler, *, prefetch: int | None = None) -> None:
        self.consumers.append(
            Consumer(
                self.connection,
                self.publisher,
                queue,
                handler,
                prefetch=prefetch or self.settings.prefetch,
                retry_delays_ms=self.settings.retry_delays_ms,
                service_user=self.settings.service_broker_user,
            )
        )

    def background(self, job: BackgroundJob) -> None:
        self._tasks.append(asyncio.create_task(job()))

    async def start(self) -> None:
        self.background(self.outbox.relay_forever)
        for consumer in self.consumers:
            await consumer.start()
        log.info("service_started", queues=[c.queue_name for c in self.consumers])

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.publisher.close()
        await self.connection.close()
        await self.pool.close()
        log.info("service_stopped")


async def _serve(name: str, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    settings = Settings.from_env()
    configure_logging(name, settings.log_level)
    try:
        runtime = await Runtime.open(name, settings)
    except migrate.SchemaOutOfDate as exc:
        log.error("schema_out_of_date", error=str(exc))
        raise SystemExit(2) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await setup(runtime)
        await runtime.start()
        await stop.wait()
        log.info("service_stopping", reason="signal")
    finally:
        await runtime.close()


def run_service(name: str, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    """Entry point of `python -m services.<name>`."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional on exotic platforms
        pass
    asyncio.run(_serve(name, setup))
