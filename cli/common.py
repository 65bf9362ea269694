"""Shared plumbing for CLI commands: settings, running coroutines, the --debug flag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from shared.logs import configure_logging
from shared.settings import Settings

T = TypeVar("T")

# The broker libraries log their own connection failures; the CLI reports those itself,
# in one line (see cli.errors), so their records only show with --debug.
_QUIET_LIBRARIES = ("aiormq", "aio_pika")


def settings() -> Settings:
    return Settings.from_env()


def debugging() -> bool:
    """True when the operator asked for `verwijsindex --debug ...`."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("debug"))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine. Errors are turned into one or two lines by the `verwijsindex`
    command itself (cli.main), for every command alike."""
    if debugging():
        configure_logging("cli", "debug")
    else:
        configure_logging("cli", "warning")
        for library in _QUIET_LIBRARIES:
            logging.getLogger(library).setLevel(logging.CRITICAL)
    return asyncio.run(coro)
