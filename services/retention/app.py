"""Wiring of the retention service: which queues it consumes and what runs beside them."""

from __future__ import annotations

import asyncio

from services.retention.sweep import Sweep
from shared.clock import utcnow
from shared.logs import describe_error, get_logger
from shared.service import Runtime

log = get_logger(__name__)


async def setup(runtime: Runtime) -> None:
    async def sweep_once() -> None:
        try:
            region = await runtime.region.get()
            await Sweep(runtime.pool, runtime.outbox, region, runtime.pseudonyms).run(utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed sweep is retried at the next tick
            log.error("sweep_failed", error=describe_error(exc, 300))

    async def sweep_forever() -> None:
        while True:
            # A backend that is away is reported once, not by a failed sweep per tick.
            if runtime.backends.all_available:
                await sweep_once()
            await asyncio.sleep(runtime.settings.retention_interval_seconds)

    runtime.background(sweep_forever)
