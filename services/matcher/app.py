"""Wiring of the matcher service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.matcher.handler import MatcherHandler
from shared.amqp.topology import MATCHER_QUEUE
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    handler = MatcherHandler(runtime)
    runtime.consume(MATCHER_QUEUE, handler, batch_handler=handler.handle_batch)
