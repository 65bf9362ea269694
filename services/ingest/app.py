"""Wiring of the ingest service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.ingest.bulk import BulkIngest
from services.ingest.lanes import LaneSorter
from shared.amqp.topology import INGEST_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    live = LaneSorter(runtime)
    runtime.consume(
        INGEST_QUEUE,
        lanes.serve(Lane.LIVE, live),
        batch_handler=lanes.serve(Lane.LIVE, live.handle_batch),
        on_acked=live.acked,
    )
    bulk = BulkIngest(runtime, lanes)
    runtime.consume(
        Lane.BULK.of(INGEST_QUEUE),
        lanes.serve(Lane.BULK, bulk),
        batch_handler=lanes.serve(Lane.BULK, bulk.handle_batch),
        batch_concurrency=Lane.BULK.batch_concurrency,
        on_acked=bulk.acked,
    )
