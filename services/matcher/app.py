"""Wiring of the matcher service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.matcher.handler import MatcherHandler, command_codec
from shared.amqp.topology import MATCHER_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    for lane in Lane:
        handler = MatcherHandler(runtime.outbox, runtime.region, runtime.pseudonyms, lane=lane)
        runtime.consume(
            lane.of(MATCHER_QUEUE),
            command_codec(lane),
            lanes.serve(lane, handler),
            batch_concurrency=lane.batch_concurrency,
        )
