"""Wiring of the ingest service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.ingest.bulk import BulkIngest
from services.ingest.handler import IngestHandler
from services.ingest.lanes import LaneSorter
from shared.amqp.consuming import DELIVERIES
from shared.amqp.topology import INGEST_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


def ingest_handler(runtime: Runtime, lane: Lane) -> IngestHandler:
    return IngestHandler(runtime.pool, runtime.outbox, runtime.publisher, runtime.region, lane=lane)


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    live = LaneSorter(
        ingest_handler(runtime, Lane.LIVE),
        runtime.pool,
        runtime.publisher,
        runtime.region,
        service=runtime.name,
        service_user=runtime.settings.service_broker_user,
    )
    runtime.consume(INGEST_QUEUE, DELIVERIES, lanes.serve(Lane.LIVE, live), on_acked=live.acked)
    bulk = BulkIngest(ingest_handler(runtime, Lane.BULK), lanes)
    runtime.consume(
        Lane.BULK.of(INGEST_QUEUE),
        DELIVERIES,
        lanes.serve(Lane.BULK, bulk),
        batch_concurrency=Lane.BULK.batch_concurrency,
        on_acked=bulk.acked,
    )
