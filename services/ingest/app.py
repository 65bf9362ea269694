"""Wiring of the ingest service: which queues it consumes and what runs beside them."""

from __future__ import annotations

import os

from services.ingest.bulk import PackIngest
from services.ingest.lanes import FIRST_PASS_BATCH, FIRST_PASS_PREFETCH, FirstPass, LaneSorter
from shared import metrics
from shared.amqp.compat.raw import RawConsumer
from shared.amqp.topology import ADMITTED_QUEUE, INGEST_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    lanes = LiveFirst()
    runtime.background(lambda: lanes.watch(runtime.connection))
    if os.environ.get("VI_INGEST_FIRST_PASS", "raw") == "runtime":
        live = LaneSorter(runtime)
        runtime.consume(
            INGEST_QUEUE,
            lanes.serve(Lane.LIVE, live),
            batch_handler=lanes.serve(Lane.LIVE, live.handle_batch),
            on_acked=live.acked,
        )
    else:
        first = FirstPass(runtime)
        reader = RawConsumer(
            runtime.connection,
            INGEST_QUEUE,
            first.handle_batch,
            prefetch=FIRST_PASS_PREFETCH,
            batch_size=FIRST_PASS_BATCH,
            service_user=runtime.settings.service_broker_user,
            on_acked=first.acked,
            redeclare=runtime.declare_topology,
            on_outcome=lambda queue, outcome, seconds: metrics.observe(
                runtime.service, queue, outcome, seconds
            ),
        )
        metrics.watch_queue(runtime.service, INGEST_QUEUE)
        runtime.background(reader.run)
        runtime.checks["first_pass_consuming"] = reader.is_consuming
    admitted = PackIngest(runtime, ADMITTED_QUEUE, Lane.LIVE, lanes)
    runtime.consume(
        ADMITTED_QUEUE,
        lanes.serve(Lane.LIVE, admitted),
        batch_handler=lanes.serve(Lane.LIVE, admitted.handle_batch),
        on_acked=admitted.acked,
    )
    bulk = PackIngest(runtime, Lane.BULK.of(INGEST_QUEUE), Lane.BULK, lanes)
    runtime.consume(
        Lane.BULK.of(INGEST_QUEUE),
        lanes.serve(Lane.BULK, bulk),
        batch_handler=lanes.serve(Lane.BULK, bulk.handle_batch),
        batch_concurrency=Lane.BULK.batch_concurrency,
        on_acked=bulk.acked,
    )
