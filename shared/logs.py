"""Structured JSON logs (structlog) with per-message context.

Context (service, message id, correlation id) lives in contextvars, so every line
written while a message is handled carries it without passing a logger around.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast

import asyncpg
import pydantic
import structlog


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing (test runners and the
    CLI's own tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _stdlib_as_json(level: str) -> None:
    """Records of the libraries (aio-pika, aiormq, asyncpg, asyncio) as JSON lines too,
    a traceback inside the line: a log shipper reads one event per line, and a plain
    text line or a multi-line traceback would break that."""
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.set_name("vi-json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "vi-json"]:
        root.removeHandler(old)  # configured again (the CLI, tests): one handler only
    root.addHandler(handler)
    root.setLevel(level.upper())


def configure_logging(service: str, level: str = "info") -> None:
    _stdlib_as_json(level)
    # At debug, aiormq logs whole AMQP frames, message bodies (and so BSNs) included:
    # the broker libraries never log below info, whatever the level.
    for library in ("aiormq", "aio_pika"):
        logging.getLogger(library).setLevel(
            max(logging.INFO, logging.getLevelNamesMapping()[level.upper()])
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


@contextmanager
def message_context(**values: Any) -> Iterator[None]:
    """Bind message_id / correlation_id (and the like) for the duration of one message."""
    with structlog.contextvars.bound_contextvars(**values):
        yield


def describe_error(exc: BaseException, limit: int = 500) -> str:
    """A short description of an error that is safe to log or put in a header.

    pydantic errors would echo the input, PostgreSQL's DETAIL can quote a whole row
    ("Failing row contains (...)", a youth's birth date among it), and asyncpg quotes a
    query argument it cannot encode: all are left out, keeping where and what went
    wrong."""
    if isinstance(exc, pydantic.ValidationError):
        locs = ", ".join(
            ".".join(str(p) for p in e["loc"]) + f" ({e['type']})"
            for e in exc.errors(include_input=False, include_url=False)
        )
        return f"ValidationError: {locs}"[:limit]
    if isinstance(exc, asyncpg.PostgresError):
        # A client-side error has no server message: "invalid input for query argument
        # $3: <the value> (...)" keeps its part before the value.
        message = exc.message or str(exc).split(":", 1)[0]
        return f"{type(exc).__name__}: {message} (SQLSTATE {exc.sqlstate})"[:limit]
    return f"{type(exc).__name__}: {exc}"[:limit]
