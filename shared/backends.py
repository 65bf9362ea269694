"""Whether RabbitMQ and PostgreSQL answer, and waiting for them with backoff.

A service does not exit when a backend is away: it waits, reports itself unready, and
logs one line when a backend goes away and one when it is back (never one per retry).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import aiormq.exceptions
import asyncpg

from shared.logs import describe_error, get_logger

log = get_logger(__name__)

FIRST_DELAY_SECONDS: Final = 0.5
MAX_DELAY_SECONDS: Final = 10.0

# What an unreachable, restarting or refusing backend raises. Anything else is a bug
# and is not waited out.
UNAVAILABLE_ERRORS: Final[tuple[type[BaseException], ...]] = (
    OSError,  # refused, reset, unreachable, no such host (ConnectionError included)
    TimeoutError,
    asyncpg.PostgresError,  # starting up, too many connections, no such database
    asyncpg.InterfaceError,
    aiormq.exceptions.AMQPError,
)

T = TypeVar("T")

# The libraries' own report of every failed attempt, by logger and message format.
# While a backend is away they would write one line per attempt (aiormq even at error
# level); `Backend` writes one per change instead.
_RETRY_REPORTS: Final = frozenset(
    {
        ("aiormq.connection", "error when creating transport: %r"),
        (
            "aio_pika.robust_connection",
            'Connection attempt to "%s" failed: %s. Reconnecting after %r seconds.',
        ),
        ("aio_pika.robust_connection", "Connection to %s closed. Reconnecting after %r seconds."),
        ("asyncpg.pool", "Failed to restore the pool connection floor; retrying"),
    }
)


# aio-pika's report of a callback that raised; for a robust channel's own close
# handler meeting a connection that is already gone, it is the lost connection again.
_CALLBACK_ERROR: Final = ("aio_pika.tools", "Callback %r error: %s: %s")


def _is_lost_connection_echo(record: logging.LogRecord) -> bool:
    """A library's line that only repeats, at error or warning level, that the broker
    connection was lost (which `Backend.down` has said once already)."""
    if (record.name, record.msg) == _CALLBACK_ERROR and isinstance(record.args, tuple):
        callback, error_type = (repr(arg) for arg in record.args[:2])
        return "RobustChannel._on_close" in callback and error_type in (
            "'RuntimeError'",  # "<Connection ...> closed"
            "'ChannelInvalidStateError'",  # "No active transport in channel"
        )
    if (record.name, record.msg) == (
        "aiormq.connection",
        "Cancelling cause reader exited abnormally",
    ):
        error = record.exc_info[1] if record.exc_info else None
        # The socket closed under the reader (a malformed frame is another error).
        return isinstance(error, aiormq.exceptions.AMQPConnectionError)
    return False


def _not_a_retry_report(record: logging.LogRecord) -> bool:
    return (record.name, record.msg) not in _RETRY_REPORTS and not _is_lost_connection_echo(record)


def quiet_retry_reports() -> None:
    """Drop the libraries' per-attempt lines and their echoes of a lost connection
    (idempotent)."""
    for name in {name for name, _ in _RETRY_REPORTS} | {_CALLBACK_ERROR[0], "aiormq.connection"}:
        library_log = logging.getLogger(name)
        if _not_a_retry_report not in library_log.filters:
            library_log.addFilter(_not_a_retry_report)


@dataclass
class Backend:
    """One backend's state as this process last saw it; logs each change once."""

    name: str
    available: bool | None = None  # None: not tried yet
    _since: float = field(default_factory=time.monotonic)

    def up(self, **detail: str) -> None:
        """`detail`: what to say besides, such as the broker node now in use."""
        if self.available is not True:
            if self.available is False:
                log.info(
                    "backend_available",
                    backend=self.name,
                    unavailable_seconds=round(time.monotonic() - self._since, 1),
                    **detail,
                )
            self.available, self._since = True, time.monotonic()

    def down(self, error: BaseException | None) -> None:
        if self.available is not False:
            log.warning(
                "backend_unavailable",
                backend=self.name,
                error=describe_error(error, 300) if error is not None else "connection lost",
                waiting="retrying with backoff; the service stays up and reports unready",
            )
            self.available, self._since = False, time.monotonic()

    async def reach(self, attempt: Callable[[], Awaitable[T]], *, wait: bool) -> T:
        """Run `attempt` until it succeeds. With ``wait=False`` the first failure is
        raised instead (the CLI: an operator wants the error, not a hang)."""
        delay = FIRST_DELAY_SECONDS
        while True:
            try:
                result = await attempt()
            except UNAVAILABLE_ERRORS as exc:
                if not wait:
                    raise
                self.down(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
            else:
                self.up()
                return result


@dataclass
class Backends:
    database: Backend = field(default_factory=lambda: Backend("postgresql"))
    broker: Backend = field(default_factory=lambda: Backend("rabbitmq"))

    async def readiness(self) -> dict[str, bool]:
        """Readiness before the service has started: what is reachable so far."""
        return {
            "broker": self.broker.available is True,
            "database": self.database.available is True,
            "consumers": False,
        }

    @property
    def all_available(self) -> bool:
        return self.broker.available is not False and self.database.available is not False
