"""Wiring of the matcher service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.matcher.handler import MatcherHandler
from shared.amqp.topology import MATCHER_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    for lane in Lane:
        handler = MatcherHandler(runtime, lane=lane)
        runtime.consume(
            lane.of(MATCHER_QUEUE),
            lanes.serve(lane, handler),
            batch_handler=lanes.serve(lane, handler.handle_batch),
            batch_concurrency=lane.batch_concurrency,
        )
