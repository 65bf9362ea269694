"""The matcher's consumer: commands answered with receipts, in one transaction per
command, or per batch of commands when they queue up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import pydantic

from services.matcher.context import Context
from services.matcher.handlers.informed import informed
from services.matcher.handlers.person import deceased, moved
from services.matcher.handlers.regie import claim
from services.matcher.handlers.register import register
from services.matcher.handlers.withdraw import withdraw
from shared.amqp.consumer import Delivery, PoisonMessage
from shared.clock import Clock, utcnow
from shared.db.outbox import UnitOfWork
from shared.envelopes import Command
from shared.logs import get_logger, message_context
from shared.receipts import claim_or_answer_duplicate
from shared.region.model import RegionConfig
from shared.service import Runtime

log = get_logger(__name__)

HANDLERS: dict[str, Callable[[Context, Any], Awaitable[None]]] = {
    "melding.register": register,
    "melding.withdraw": withdraw,
    "regie.claim": claim,
    "melding.informed": informed,
    "person.moved": moved,
    "person.deceased": deceased,
}


def parse_command(delivery: Delivery) -> Command:
    try:
        return Command.model_validate_json(delivery.message.body)
    except pydantic.ValidationError as exc:
        raise PoisonMessage("not a valid internal command") from exc


class MatcherHandler:
    def __init__(self, runtime: Runtime, clock: Clock = utcnow) -> None:
        self._rt = runtime
        self._clock = clock

    async def __call__(self, delivery: Delivery) -> None:
        await self.handle_batch([delivery])

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """All commands in one transaction: each sees the effects of those before it
        (two meldingen on one youth in a batch match as if they came one by one). Any
        failure rolls the whole batch back; the consumer then retries one by one."""
        commands = [(parse_command(d), d.seen_before) for d in deliveries]
        region = await self._rt.region.get()
        now = self._clock()
        async with self._rt.outbox.unit_of_work() as uow:
            for command, seen_before in commands:
                with message_context(
                    message_id=command.message_id,
                    correlation_id=command.message_id,
                    partner=command.partner_id,
                    type=command.message.type,
                ):
                    await self._apply(uow, region, now, command, seen_before)

    async def _apply(
        self,
        uow: UnitOfWork,
        region: RegionConfig,
        now: datetime,
        command: Command,
        seen_before: bool,
    ) -> None:
        message = command.message
        is_new, answers = await claim_or_answer_duplicate(
            uow.conn,
            command.partner_id,
            command.message_id,
            seen_before=command.seen_before or seen_before,
            melding_ref=getattr(message, "melding_ref", None),
        )
        uow.emit(*answers)
        if not is_new:
            log.info("inbound_already_handled", answered=bool(answers))
            return
        ctx = Context(uow, region, self._rt.pseudonyms, command, now)
        await HANDLERS[message.type](ctx, message)
