"""A backend lost while a service starts (both answered, its consumers not yet running)
starts the service again from the beginning instead of ending the process; a fault of
the service's own still ends it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from shared.amqp.topology import MATCHER_QUEUE
from shared.envelopes import Command
from shared.service import Runtime, serve_until
from testing.ports import free_port
from tests.support import COMMANDS, RegionUnderTest, eventually, http_get


async def _ignore(commands: Sequence[Command]) -> None:
    pass


async def test_a_backend_lost_during_start_up_starts_the_service_again(
    test_region: RegionUnderTest,
) -> None:
    settings = replace(test_region.settings, http_port=free_port())
    attempts: list[Runtime] = []

    async def setup(runtime: Runtime) -> None:
        attempts.append(runtime)
        if len(attempts) == 1:
            # As aiormq reports a broker that went away while a channel opened.
            raise ConnectionResetError("connection lost while starting")
        runtime.consume(MATCHER_QUEUE, COMMANDS, _ignore)

    stop = asyncio.Event()
    serving = asyncio.create_task(serve_until("matcher", settings, setup, stop))
    readyz = f"http://127.0.0.1:{settings.http_port}/readyz"

    async def ready() -> bool:
        assert not serving.done(), serving
        try:
            status, body = await http_get(readyz)
        except OSError:
            return False  # the endpoint is not up yet

        return status == 200 and json.loads(body)["ready"] is True

    await eventually(ready, timeout=20)
    assert len(attempts) == 2
    first, second = attempts
    assert first.connection.is_closed and not second.connection.is_closed
    assert first.pool.is_closing()
    stop.set()
    await asyncio.wait_for(serving, 30)
    assert second.connection.is_closed


async def test_a_fault_of_its_own_during_start_up_is_not_waited_out(
    test_region: RegionUnderTest,
) -> None:
    async def setup(runtime: Runtime) -> None:
        raise ValueError("a bug in the wiring")

    with pytest.raises(ValueError, match="a bug in the wiring"):
        await asyncio.wait_for(
            serve_until("matcher", test_region.settings, setup, asyncio.Event()), 30
        )
