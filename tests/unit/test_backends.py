"""Backend state: one log line per change, waiting with backoff, and which errors are
waited out."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import aio_pika
import aiormq.exceptions
import pytest

from shared import backends
from shared.backends import Backend, quiet_retry_reports


class RecordingLog:
    """Stands in for the module's logger: structlog caches loggers on first use, so
    capturing its output depends on which test configured logging first."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    warning = info


async def test_waits_with_backoff_and_logs_each_change_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    # Only this module's view of asyncio: other tasks on the loop keep the real sleep.
    monkeypatch.setattr(backends, "asyncio", SimpleNamespace(sleep=no_sleep))
    failures = iter([ConnectionRefusedError(111, "refused")] * 7)

    async def attempt() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "pool"

    log = RecordingLog()
    monkeypatch.setattr(backends, "log", log)
    database = Backend("postgresql")
    assert await database.reach(attempt, wait=True) == "pool"
    database.down(None)
    database.down(ConnectionResetError())
    database.up()
    database.up()
    logs = log.lines
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [(e["event"], e["backend"]) for e in logs] == [
        ("backend_unavailable", "postgresql"),
        ("backend_available", "postgresql"),
        ("backend_unavailable", "postgresql"),
        ("backend_available", "postgresql"),
    ]
    assert "refused" in logs[0]["error"] and logs[2]["error"] == "connection lost"


async def test_without_waiting_the_first_failure_is_raised() -> None:
    async def attempt() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ConnectionRefusedError):
        await Backend("rabbitmq").reach(attempt, wait=False)


async def test_a_fault_of_our_own_is_not_waited_out() -> None:
    calls: list[int] = []

    async def attempt() -> None:
        calls.append(1)
        raise RuntimeError("schema out of date")

    with pytest.raises(RuntimeError):
        await Backend("postgresql").reach(attempt, wait=True)
    assert calls == [1]


def test_library_reports_of_each_failed_attempt_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_retry_reports()
    quiet_retry_reports()  # idempotent
    records: list[Any] = []
    # The libraries' loggers are set explicitly: a CLI command run in this process
    # before may have quietened them (cli.common).
    with (
        caplog.at_level(logging.INFO),
        caplog.at_level(logging.INFO, logger="aiormq"),
        caplog.at_level(logging.INFO, logger="asyncpg"),
    ):
        logging.getLogger("aiormq.connection").error("error when creating transport: %r", "x")
        logging.getLogger("asyncpg.pool").warning(
            "Failed to restore the pool connection floor; retrying"
        )
        logging.getLogger("aiormq.connection").error("something else: %r", "y")
        records = [r.getMessage() for r in caplog.records]
    assert records == ["something else: 'y'"]


def test_library_echoes_of_a_lost_broker_connection_are_dropped_and_real_errors_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_retry_reports()
    tools, connection = logging.getLogger("aio_pika.tools"), logging.getLogger("aiormq.connection")
    lost = aiormq.exceptions.AMQPConnectionError("Server connection unexpectedly closed")
    bad_frame = aiormq.exceptions.InvalidFrameError("bad frame")
    with (
        caplog.at_level(logging.INFO),
        caplog.at_level(logging.INFO, logger="aiormq"),
        caplog.at_level(logging.INFO, logger="aio_pika"),
    ):
        on_close = aio_pika.RobustChannel._on_close
        for error in (("RuntimeError", "<Connection> closed"), ("ChannelInvalidStateError", "x")):
            tools.error("Callback %r error: %s: %s", on_close, *error)
        connection.warning("Cancelling cause reader exited abnormally", exc_info=lost)
        # Not a lost connection: still reported.
        tools.error("Callback %r error: %s: %s", print, "KeyError", "'x'")
        connection.warning("Cancelling cause reader exited abnormally", exc_info=bad_frame)
        records = [(r.name, r.exc_info) for r in caplog.records]
    assert records == [
        ("aio_pika.tools", None),
        ("aiormq.connection", (type(bad_frame), bad_frame, None)),
    ]
