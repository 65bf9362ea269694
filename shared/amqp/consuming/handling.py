"""A batch of deliveries through the handler, and the one place a failed batch is split:

* a delivery that cannot be decoded is retried or parked on its own;
* a failed batch of several deliveries is handled again delivery by delivery;
* a failed delivery of several items goes on as one message per item, when the codec
  can re-send an item alone (one that failed with its neighbours is split at once);
  else, like a failed delivery of one item, it is retried or parked whole;
* items a handler could not finish after committing the others (`Unfinished`) go on
  as one message each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Generic, TypeVar

from shared.amqp.consuming.acks import Acks
from shared.amqp.consuming.codec import BatchHandler, Codec
from shared.amqp.consuming.delivery import Delivery
from shared.amqp.consuming.failures import Failures
from shared.amqp.consuming.signals import Unfinished
from shared.logs import describe_error, get_logger, message_context

log = get_logger(__name__)

Item = TypeVar("Item")
OutcomeHook = Callable[[str, str, float], None]


class Handling(Generic[Item]):
    def __init__(
        self,
        queue_name: str,
        codec: Codec[Item],
        handler: BatchHandler[Item],
        acks: Acks,
        failures: Failures,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self._queue = queue_name
        self._codec = codec
        self._handler = handler
        self._acks = acks
        self._failures = failures
        self._on_outcome = on_outcome

    async def run(self, deliveries: Sequence[Delivery]) -> None:
        """Handle the deliveries as one batch and settle each."""
        started = asyncio.get_running_loop().time()
        decoded = []
        for delivery in deliveries:
            items = await self._decode(delivery, started)
            if items is not None:
                decoded.append((delivery, items))
        if len(decoded) == 1:
            await self._run_alone(*decoded[0], started)
        elif decoded:
            await self._run_together(decoded, started)

    async def _decode(self, delivery: Delivery, started: float) -> Sequence[Item] | None:
        try:
            return self._codec.decode(delivery)
        except Exception as exc:
            with self._context(delivery):
                self._report(await self._failures.retry_or_park(delivery, exc), started)
            return None

    async def _run_together(
        self, decoded: Sequence[tuple[Delivery, Sequence[Item]]], started: float
    ) -> None:
        try:
            with message_context(queue=self._queue, batch=len(decoded)):
                await self._handle([item for _, items in decoded for item in items])
        except Exception as exc:
            log.warning(
                "batch_failed_one_by_one",
                queue=self._queue,
                batch=len(decoded),
                error=describe_error(exc),
            )
            await asyncio.gather(
                *(self.run([replace(d, after_failed_batch=True)]) for d, _ in decoded)
            )
            return
        deliveries = [d for d, _ in decoded]
        await self._acks.ack_all(deliveries)
        for _ in deliveries:
            self._report("ok", started)

    async def _run_alone(self, delivery: Delivery, items: Sequence[Item], started: float) -> None:
        splits = len(items) > 1 and self._codec.resend is not None
        with self._context(delivery):
            try:
                if splits and delivery.after_failed_batch:
                    # It failed once already, with its neighbours: split at once.
                    await self._split(items, "its batch failed")
                else:
                    await self._handle(items)
            except Exception as exc:
                outcome = await self._after_failure(delivery, items, exc, splits)
            else:
                await self._acks.ack_all([delivery])
                outcome = "ok"
            self._report(outcome, started)

    async def _after_failure(
        self, delivery: Delivery, items: Sequence[Item], exc: Exception, splits: bool
    ) -> str:
        if splits and not delivery.after_failed_batch:
            try:
                await self._split(items, describe_error(exc))
            except Exception as split_exc:
                exc = split_exc
            else:
                await self._acks.ack_all([delivery])
                return "ok"
        return await self._failures.retry_or_park(delivery, exc)

    async def _handle(self, items: Sequence[Item]) -> None:
        try:
            await self._handler(items)
        except Unfinished as exc:
            if self._codec.resend is None:
                raise
            await self._split(exc.remaining, describe_error(exc.__cause__ or exc))

    async def _split(self, items: Sequence[Item], error: str) -> None:
        resend = self._codec.resend
        assert resend is not None
        await self._failures.split([resend(item) for item in items], error)

    def _context(self, delivery: Delivery) -> AbstractContextManager[None]:
        msg = delivery.message
        return message_context(
            message_id=msg.message_id,
            correlation_id=msg.correlation_id or msg.message_id,
            queue=self._queue,
            attempt=delivery.attempt,
        )

    def _report(self, outcome: str, started: float) -> None:
        if self._on_outcome is not None:
            seconds = asyncio.get_running_loop().time() - started
            self._on_outcome(self._queue, outcome, seconds)
