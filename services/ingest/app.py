"""Wiring of the ingest service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.ingest.bulk import PackIngest
from services.ingest.handler import IngestHandler
from services.ingest.lanes import FIRST_PASS_BATCH, FIRST_PASS_PREFETCH, FirstPass
from shared import metrics
from shared.amqp.compat.raw import RawConsumer
from shared.amqp.consuming import DELIVERIES, ConsumerSettings, Failures
from shared.amqp.topology import ADMITTED_QUEUE, INGEST_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


def ingest_handler(runtime: Runtime, lane: Lane) -> IngestHandler:
    return IngestHandler(runtime.pool, runtime.outbox, runtime.publisher, runtime.region, lane=lane)


def first_pass(runtime: Runtime) -> FirstPass:
    return FirstPass(
        runtime.pool,
        runtime.publisher,
        runtime.region,
        service=runtime.name,
        service_user=runtime.settings.service_broker_user,
        pack_size=runtime.settings.batch_size,
    )


def pack_ingest(runtime: Runtime, queue: str, lane: Lane, lanes: LiveFirst) -> PackIngest:
    failures = Failures(runtime.publisher, queue, runtime.settings.retry_delays_ms)
    return PackIngest(ingest_handler(runtime, lane), failures, lane, lanes)


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    first = first_pass(runtime)
    reader = RawConsumer(
        runtime.connection,
        INGEST_QUEUE,
        first,
        ConsumerSettings(
            prefetch=FIRST_PASS_PREFETCH,
            retry_delays_ms=runtime.settings.retry_delays_ms,
            service_user=runtime.settings.service_broker_user,
            batch_size=FIRST_PASS_BATCH,
        ),
        on_acked=first.acked,
        redeclare=runtime.declare_topology,
        on_outcome=lambda queue, outcome, seconds: metrics.observe(
            runtime.name, queue, outcome, seconds
        ),
    )
    metrics.watch_queue(runtime.name, INGEST_QUEUE)
    runtime.background(reader.run)
    runtime.checks["first_pass_consuming"] = reader.is_consuming
    admitted = pack_ingest(runtime, ADMITTED_QUEUE, Lane.LIVE, lanes)
    runtime.consume(
        ADMITTED_QUEUE, DELIVERIES, lanes.serve(Lane.LIVE, admitted), on_acked=admitted.acked
    )
    bulk_queue = Lane.BULK.of(INGEST_QUEUE)
    bulk = pack_ingest(runtime, bulk_queue, Lane.BULK, lanes)
    runtime.consume(
        bulk_queue,
        DELIVERIES,
        lanes.serve(Lane.BULK, bulk),
        batch_concurrency=Lane.BULK.batch_concurrency,
        on_acked=bulk.acked,
    )
