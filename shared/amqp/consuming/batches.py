"""Gathering deliveries into batches: those that arrive while earlier ones are being
handled are handed over together, at most `size` at once, by at most `concurrency`
runners."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from shared.amqp.consuming.acks import settle
from shared.amqp.consuming.delivery import Delivery
from shared.logs import describe_error, get_logger

log = get_logger(__name__)

RunBatch = Callable[[Sequence[Delivery]], Awaitable[None]]


class Batches:
    def __init__(self, queue_name: str, run: RunBatch, *, size: int, concurrency: int) -> None:
        self._queue = queue_name
        self._run = run
        self._size = size
        self._concurrency = max(1, concurrency)
        # Deliveries waiting for a batch, each with the future its callback waits on.
        self._waiting: list[tuple[Delivery, asyncio.Future[None]]] = []
        self.runners: set[asyncio.Task[None]] = set()

    async def join(self, delivery: Delivery) -> None:
        """Wait until this delivery was handled as part of a batch (and settled)."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, done))
        if len(self.runners) < self._concurrency:
            self.runners.add(asyncio.create_task(self._run_batches()))
        await done

    async def _run_batches(self) -> None:
        me = asyncio.current_task()
        try:
            # Let the other deliveries of the same burst join before taking a batch.
            await asyncio.sleep(0)
            # No await between finding the list empty and leaving the runner set, so a
            # delivery that joins later always finds a free runner slot.
            while self._waiting:
                batch = self._waiting[: self._size]
                del self._waiting[: self._size]
                deliveries = [delivery for delivery, _ in batch]
                try:
                    await self._run(deliveries)
                except BaseException as exc:
                    await self._give_back(deliveries, exc)
                    if not isinstance(exc, Exception) and (me is None or me.cancelling()):
                        raise  # this runner itself is being stopped
                finally:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            if me is not None:
                self.runners.discard(me)

    async def _give_back(self, deliveries: Sequence[Delivery], exc: BaseException) -> None:
        """A batch that ended in something its handling does not catch (a cancellation
        from inside a library, a bug): the broker gets back what was not settled.
        Unsettled, the deliveries would stay unacked for good and, once they fill the
        prefetch, the queue would stall while the consumer looks healthy."""
        unsettled = [d for d in deliveries if not d.message.processed]
        log.error(
            "batch_aborted_given_back",
            queue=self._queue,
            batch=len(deliveries),
            given_back=len(unsettled),
            error=describe_error(exc) or type(exc).__name__,
        )
        await asyncio.gather(*(settle(d.message.nack(requeue=True), "nack") for d in unsettled))
