"""Shared plumbing for CLI commands: settings, running coroutines, clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from shared.amqp.tls import TlsSettingsError
from shared.logs import configure_logging
from shared.settings import Settings

T = TypeVar("T")


def settings() -> Settings:
    return Settings.from_env()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn connection trouble into a message that says what to do."""
    configure_logging("cli", "warning")
    try:
        return asyncio.run(coro)
    except TlsSettingsError as exc:
        raise click.ClickException(
            f"{exc}. Check VI_AMQP_CA_FILE, VI_AMQP_CERT_FILE and VI_AMQP_KEY_FILE."
        ) from None
    except (OSError, ConnectionError) as exc:
        raise click.ClickException(
            f"{exc}. Check that PostgreSQL and RabbitMQ are running and that "
            "VI_DATABASE_URL / VI_AMQP_URL point at them."
        ) from None
