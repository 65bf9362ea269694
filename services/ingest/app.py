"""Wiring of the ingest service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.ingest.handler import IngestHandler
from shared.amqp.topology import INGEST_QUEUE
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    handler = IngestHandler(runtime)
    runtime.consume(
        INGEST_QUEUE, handler, batch_handler=handler.handle_batch, on_acked=handler.acked
    )
