"""The matcher's consumer: one transaction per command, answered with a receipt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from shared.envelopes import Command
from shared.logs import get_logger, message_context
from shared.receipts import claim_or_answer_duplicate
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


class MatcherHandler:
    def __init__(self, runtime: Runtime, clock: Clock = utcnow) -> None:
        self._rt = runtime
        self._clock = clock

    async def __call__(self, delivery: Delivery) -> None:
        try:
            command = Command.model_validate_json(delivery.message.body)
        except pydantic.ValidationError as exc:
            raise PoisonMessage("not a valid internal command") from exc
        message = command.message
        with message_context(partner=command.partner_id, type=message.type):
            region = await self._rt.region.get()
            async with self._rt.outbox.unit_of_work() as uow:
                is_new, answers = await claim_or_answer_duplicate(
                    uow.conn,
                    command.partner_id,
                    command.message_id,
                    seen_before=command.seen_before or delivery.seen_before,
                    melding_ref=getattr(message, "melding_ref", None),
                )
                uow.emit(*answers)
                if not is_new:
                    log.info("inbound_already_handled", answered=bool(answers))
                    return
                ctx = Context(uow, region, self._rt.pseudonyms, command, self._clock())
                await HANDLERS[message.type](ctx, message)
