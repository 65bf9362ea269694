"""The composition root every service shares: broker, database, outbox relay, region
config, consumers, and a clean shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from aio_pika.abc import AbstractRobustConnection

from shared import metrics
from shared.amqp.connection import MultiNodeConnection, connect_broker
from shared.amqp.consuming import AckedHook, BatchHandler, Codec, Consumer, ConsumerSettings
from shared.amqp.nodes import node_of
from shared.amqp.publisher import Publisher
from shared.amqp.topology import declare_core
from shared.backends import (
    FIRST_DELAY_SECONDS,
    MAX_DELAY_SECONDS,
    UNAVAILABLE_ERRORS,
    Backends,
    quiet_retry_reports,
)
from shared.db import heartbeat, migrate
from shared.db.outbox import Outbox
from shared.db.pool import create_pool
from shared.http import HealthServer
from shared.logs import configure_logging, describe_error, get_logger
from shared.pseudonym import Pseudonymizer
from shared.region.store import RegionCache
from shared.settings import Settings

log = get_logger(__name__)

POOL_CLOSE_SECONDS = 10.0

BackgroundJob = Callable[[], Coroutine[Any, Any, None]]
Item = TypeVar("Item")


@dataclass
class Runtime:
    # The service, as named in metrics, logs and the replicas' heartbeats.
    name: str
    settings: Settings
    connection: AbstractRobustConnection
    publisher: Publisher
    pool: asyncpg.Pool[Any]
    outbox: Outbox
    region: RegionCache
    pseudonyms: Pseudonymizer
    consumers: list[Consumer[Any]] = field(default_factory=list)
    http: HealthServer | None = None
    instance: heartbeat.Instance = field(default_factory=lambda: heartbeat.Instance.new("?"))
    backends: Backends = field(default_factory=Backends)
    # Further readiness checks a service adds (the portal: its own broker login).
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    _closing: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    async def open(
        cls, name: str, settings: Settings, *, backends: Backends | None = None
    ) -> Runtime:
        """Connect to PostgreSQL and RabbitMQ. Given `backends`, wait (with backoff)
        for each until it answers, tracking their state there; without, the first
        failure is raised."""
        wait = backends is not None
        backends = backends or Backends()
        pool = await backends.database.reach(lambda: _open_database(settings), wait=wait)
        try:
            connection, publisher = await backends.broker.reach(
                lambda: _open_broker(name, settings), wait=wait
            )
        except BaseException:
            await pool.close()
            raise
        runtime = cls(
            name=name,
            settings=settings,
            connection=connection,
            publisher=publisher,
            pool=pool,
            outbox=Outbox(pool, publisher, grace_seconds=settings.outbox_grace_seconds),
            region=RegionCache(pool, settings.config_reload_seconds),
            pseudonyms=Pseudonymizer(settings.pseudonym_key),
            instance=heartbeat.Instance.new(name),
            backends=backends,
        )
        runtime._watch_broker()
        return runtime

    def _watch_broker(self) -> None:
        """Keep the broker's state current: the robust connection reconnects by itself
        (every 2 s); these callbacks see it go and come back."""

        def lost(_: object, error: BaseException | None = None) -> None:
            if not self._closing:
                self.backends.broker.down(error)

        self.connection.close_callbacks.add(lost)

        def back(connection: object) -> None:
            # The one line of the change says which node the service is on now.
            if isinstance(connection, MultiNodeConnection):
                self.backends.broker.up(node=node_of(connection.nodes.current))
            else:
                self.backends.broker.up()

        self.connection.reconnect_callbacks.add(back)

    def consume(
        self,
        queue: str,
        codec: Codec[Item],
        handler: BatchHandler[Item],
        *,
        prefetch: int | None = None,
        batch_size: int | None = None,
        batch_concurrency: int | None = None,
        on_acked: AckedHook | None = None,
    ) -> None:
        """Consume `queue`: `codec` decodes each delivery to items, `handler` takes the
        items of a batch of deliveries (see `shared.amqp.consuming`) of at most
        `batch_size` (default and bound VI_BATCH_SIZE), at most `batch_concurrency`
        (default VI_BATCH_CONCURRENCY) batches at once; `on_acked` hears of confirmed
        acks."""
        metrics.watch_queue(self.name, queue)
        settings = ConsumerSettings(
            prefetch=prefetch or self.settings.prefetch,
            retry_delays_ms=self.settings.retry_delays_ms,
            service_user=self.settings.service_broker_user,
            batch_size=min(batch_size or self.settings.batch_size, self.settings.batch_size),
            batch_concurrency=batch_concurrency or self.settings.batch_concurrency,
        )
        self.consumers.append(
            Consumer(
                self.connection,
                self.publisher,
                queue,
                codec,
                handler,
                settings,
                on_outcome=lambda q, outcome, seconds: metrics.observe(
                    self.name, q, outcome, seconds
                ),
                on_acked=on_acked,
                redeclare=self.declare_topology,
            )
        )

    async def declare_topology(self) -> None:
        async with self.connection.channel() as channel:
            await declare_core(
                channel,
                retry_delays_ms=self.settings.retry_delays_ms,
                delivery_limit=self.settings.delivery_limit,
            )

    async def readiness(self) -> dict[str, bool]:
        """Broker connected, database answering, every consumer registered."""
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2.0)
        except Exception as exc:
            self.backends.database.down(exc)
        else:
            self.backends.database.up()
        consumers = [await c.is_consuming() for c in self.consumers]
        return {
            "broker": self.backends.broker.available is True and not self.connection.is_closed,
            "database": self.backends.database.available is True,
            "consumers": all(consumers),
            **{name: check() for name, check in self.checks.items()},
        }

    def background(self, job: BackgroundJob) -> None:
        self._tasks.append(asyncio.create_task(job()))

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run `closer` at shutdown, once the consumers have drained (for what a
        handler keeps open between messages, such as SMTP connections)."""
        self._closers.append(closer)

    async def start(self) -> None:
        self.background(
            lambda: self.outbox.relay_forever(paused=lambda: not self.backends.all_available)
        )
        for consumer in self.consumers:
            await consumer.start()
        self.background(self._heartbeat_forever)
        if self.settings.http_port >= 0 and self.http is None:
            self.http = HealthServer(self.name, self.readiness)
            await self.http.start(self.settings.http_host, self.settings.http_port)
        log.info(
            "service_started",
            queues=[c.queue_name for c in self.consumers],
            http_port=self.http.port if self.http else None,
        )

    async def _heartbeat_forever(self) -> None:
        """Report this replica (for `verwijsindex status`), and the outbox and replica
        gauges: each replica exports the figures of all, so any one left reports the
        others gone."""
        while True:
            try:
                checks = await self.readiness()
                ready = all(checks.values())
                metrics.READY.labels(self.name).set(1 if ready else 0)
                if not checks["database"]:  # logged once by the state; nowhere to write
                    await asyncio.sleep(heartbeat.INTERVAL_SECONDS)
                    continue
                await heartbeat.beat(self.pool, self.instance, ready=ready, detail=checks)
                backlog, lag = await self.outbox.backlog_and_lag()
                metrics.OUTBOX_BACKLOG.labels(self.name).set(backlog)
                metrics.OUTBOX_LAG.labels(self.name).set(lag)
                metrics.report_replicas(await heartbeat.census(self.pool))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat_failed", error=describe_error(exc, 300))
            await asyncio.sleep(heartbeat.INTERVAL_SECONDS)

    async def close(self) -> None:
        """Drain: stop consuming, finish in-flight messages, then close everything."""
        self._closing = True
        for consumer in self.consumers:
            await consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for closer in self._closers:
            closer()
        await self.outbox.flush()
        if self.http is not None:
            await self.http.close()
        try:
            await heartbeat.leave(self.pool, self.instance)
        except Exception as exc:
            log.warning("heartbeat_leave_failed", error=describe_error(exc, 300))
        await self.publisher.close()
        await self.connection.close()
        try:
            # Waits for borrowed connections; one held by a handler that outlived the
            # drain must not keep the process from exiting.
            await asyncio.wait_for(self.pool.close(), POOL_CLOSE_SECONDS)
        except TimeoutError:
            log.warning("pool_close_timed_out", seconds=POOL_CLOSE_SECONDS)
            self.pool.terminate()
        log.info("service_stopped")


async def _open_database(settings: Settings) -> asyncpg.Pool[Any]:
    pool = await create_pool(settings.database_url, size=settings.db_pool_size)
    try:
        async with pool.acquire() as conn:
            await migrate.ensure_current(conn)
    except BaseException:
        await pool.close()
        raise
    return pool


async def _open_broker(name: str, settings: Settings) -> tuple[AbstractRobustConnection, Publisher]:
    """A connection with the core topology declared, and its started publisher: one
    step, so that a broker lost between the two is waited out like one lost before."""
    connection = await connect_broker(settings, name)
    try:
        async with connection.channel() as channel:
            await declare_core(
                channel,
                retry_delays_ms=settings.retry_delays_ms,
                delivery_limit=settings.delivery_limit,
            )
        publisher = Publisher(connection)
        await publisher.start()
    except BaseException:
        await connection.close()
        raise
    return connection, publisher


async def _open_waiting(
    name: str, settings: Settings, backends: Backends, stop: asyncio.Event
) -> Runtime | None:
    """The runtime once both backends answer, or None when stopped while waiting."""
    opening = asyncio.create_task(Runtime.open(name, settings, backends=backends))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not opening.done():
        opening.cancel()
        await asyncio.gather(opening, return_exceptions=True)
        return None
    return opening.result()


async def _serve(name: str, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    settings = Settings.from_env()
    configure_logging(name, settings.log_level)
    quiet_retry_reports()
    if settings.uses_dev_key:
        # Once per service start. (Not in Runtime.open: CLI commands open a runtime too,
        # and an operator's every command would repeat it.)
        log.warning("dev_pseudonym_key", hint="set VI_PSEUDONYM_KEY outside development")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_until(name, settings, setup, stop)


async def serve_until(
    name: str,
    settings: Settings,
    setup: Callable[[Runtime], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Run the service until `stop` is set. A backend lost while the service starts
    (after both answered, before its consumers run) starts it again from the
    beginning, after a pause: only a fault of its own ends the process."""
    backends = Backends()
    http: HealthServer | None = None
    if settings.http_port >= 0:
        # Up before the backends, so that /readyz can say what the service waits for.
        http = HealthServer(name, backends.readiness)
        await http.start(settings.http_host, settings.http_port)
    delay = FIRST_DELAY_SECONDS
    try:
        while True:
            runtime = await _open_or_exit(name, settings, backends, stop)
            if runtime is None:
                log.info("service_stopping", reason="signal", started=False)
                return
            try:
                await _start(runtime, setup, http)
            except UNAVAILABLE_ERRORS as exc:
                log.warning(
                    "startup_interrupted",
                    error=describe_error(exc, 300),
                    waiting="starting again; the service stays up and reports unready",
                )
                await _close_unstarted(runtime, http, backends)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
                continue
            break
        try:
            await stop.wait()
            log.info("service_stopping", reason="signal")
        finally:
            await runtime.close()
    finally:
        if http is not None:
            await http.close()  # after close(): a second close is a no-op


async def _open_or_exit(
    name: str, settings: Settings, backends: Backends, stop: asyncio.Event
) -> Runtime | None:
    try:
        return await _open_waiting(name, settings, backends, stop)
    except migrate.SchemaOutOfDate as exc:
        log.error("schema_out_of_date", error=str(exc))
        raise SystemExit(2) from None
    except Exception as exc:
        # Not a backend that is away (that is waited out) but a fault of our own.
        log.error("startup_failed", error=describe_error(exc, 300))
        raise SystemExit(1) from None


async def _start(
    runtime: Runtime, setup: Callable[[Runtime], Awaitable[None]], http: HealthServer | None
) -> None:
    if http is not None:
        runtime.http = http
        http.readiness = runtime.readiness
    await setup(runtime)
    await runtime.start()


async def _close_unstarted(runtime: Runtime, http: HealthServer | None, backends: Backends) -> None:
    """Close what a start that was cut short opened; the health endpoint stays (it is
    the process's, not the runtime's) and answers from the backends' state again."""
    runtime.http = None
    if http is not None:
        http.readiness = backends.readiness
    try:
        await runtime.close()
    except Exception as exc:
        log.warning("startup_cleanup_failed", error=describe_error(exc, 300))
        # Whatever close() did not reach must not live on beside the next attempt
        # (a robust connection would go on reconnecting by itself).
        with contextlib.suppress(Exception):
            await runtime.connection.close()
        runtime.pool.terminate()


def run_service(name: str, setup: Callable[[Runtime], Awaitable[None]]) -> None:
    """Entry point of `python -m services.<name>`."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional on exotic platforms
        pass
    asyncio.run(_serve(name, setup))
