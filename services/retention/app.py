"""Wiring of the retention service: which queues it consumes and what runs beside them."""

from __future__ import annotations

import asyncio
import time

from services.retention.rules import ESCALATION_RULE
from services.retention.sweep import Sweep
from shared import metrics
from shared.clock import utcnow
from shared.logs import describe_error, get_logger
from shared.service import Runtime

log = get_logger(__name__)


async def setup(runtime: Runtime) -> None:
    interval = runtime.settings.retention_interval_seconds
    metrics.watch_retention(runtime.name, interval)

    async def sweep_once() -> None:
        try:
            region = await runtime.region.get()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # retried at the next tick
            log.error("sweep_failed", error=describe_error(exc, 300))
            return
        sweep = Sweep(runtime.pool, runtime.outbox, region, runtime.pseudonyms)
        try:
            await sweep.run(utcnow())
            metrics.RETENTION_LAST_SWEEP.labels(runtime.name).set(time.time())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed sweep is retried at the next tick
            log.error("sweep_failed", error=describe_error(exc, 300))
        await count_overdue_escalations(runtime, sweep)

    async def sweep_forever() -> None:
        while True:
            # A backend that is away is reported once, not by a failed sweep per tick.
            if runtime.backends.all_available:
                await sweep_once()
            await asyncio.sleep(interval)

    runtime.background(sweep_forever)


async def count_overdue_escalations(runtime: Runtime, sweep: Sweep) -> None:
    """After every sweep, whether or not it got through: an escalation that keeps
    failing shows as overdue matches, not only as a late sweep."""
    try:
        overdue = await sweep.still_due(ESCALATION_RULE, utcnow())
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the database is away: the sweep said so already
        log.warning("overdue_count_failed", error=describe_error(exc, 300))
        return
    metrics.LEAD_ESCALATIONS_OVERDUE.labels(runtime.name).set(overdue)
