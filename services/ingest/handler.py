"""The front door: authenticate the partner, validate, and make sure every inbound
message ends in a durable outcome (a receipt, or `vi.rejected`).

Valid messages go on to the matcher, which answers them. Invalid ones are answered
here. Ingest keeps no state of its own; the inbox table makes the answer idempotent.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from shared.amqp.consumer import ERROR_HEADER, Delivery
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY, REJECTED_QUEUE
from shared.clock import Clock, utcnow
from shared.contract.errors import ErrorItem
from shared.contract.outbound import Receipt
from shared.contract.validation import Invalid, check_message_id, validate_inbound
from shared.envelopes import Command
from shared.logs import get_logger, message_context
from shared.receipts import claim_or_answer_duplicate, receipt_message, rejected
from shared.region.model import Partner
from shared.service import Runtime

log = get_logger(__name__)

_NO_ID_NS = uuid.UUID("0b7e0b55-35a4-4c53-a3a5-1d1e56c0c6c8")


class IngestHandler:
    def __init__(self, runtime: Runtime, clock: Clock = utcnow) -> None:
        self._rt = runtime
        self._clock = clock

    async def __call__(self, delivery: Delivery) -> None:
        region = await self._rt.region.get()
        user_id = delivery.user_id
        partner = region.partners_by_broker_user.get(user_id) if user_id else None
        if partner is None:
            await self._reject_unknown_sender(delivery, user_id)
            return
        with message_context(partner=partner.id):
            await self._handle(delivery, partner, region.municipalities_by_code.keys())

    async def _reject_unknown_sender(self, delivery: Delivery, user_id: str | None) -> None:
        reason = (
            "no user_id property: publish with user_id set to your broker login"
            if not user_id
            else f"user_id {user_id!r} is not a partner of this region"
        )
        log.warning("inbound_rejected_unknown_sender", reason=reason)
        await self._rt.publisher.publish_message(
            "", REJECTED_QUEUE, delivery.copy_for_runtime(**{ERROR_HEADER: reason})
        )

    async def _handle(self, delivery: Delivery, partner: Partner, municipalities: object) -> None:
        message = delivery.message
        outcome = validate_inbound(
            delivery.routing_key,
            message.body,
            roles=partner.role_names,
            municipalities=municipalities,  # type: ignore[arg-type]
            now=self._clock(),
        )
        id_error = check_message_id(message.message_id)
        if id_error is not None:
            errors = [id_error, *(outcome.errors if isinstance(outcome, Invalid) else [])]
            await self._answer_without_message_id(delivery, partner, errors, _ref_of(outcome))
            return
        assert message.message_id is not None
        if isinstance(outcome, Invalid):
            log.info("inbound_invalid", codes=sorted({e.code.value for e in outcome.errors}))
            async with self._rt.outbox.unit_of_work() as uow:
                is_new, rows = await claim_or_answer_duplicate(
                    uow.conn,
                    partner.id,
                    message.message_id,
                    seen_before=delivery.seen_before,
                    melding_ref=outcome.melding_ref,
                )
                if is_new:
                    rows = [
                        rejected(
                            partner.id, message.message_id, outcome.melding_ref, outcome.errors
                        )
                    ]
                uow.emit(*rows)
            return
        command = Command(
            partner_id=partner.id,
            message_id=message.message_id,
            seen_before=delivery.seen_before,
            received_at=self._clock(),
            message=outcome.message,
        )
        await self._rt.publisher.publish(
            INTERNAL_EXCHANGE,
            MATCHER_KEY,
            command.model_dump_json().encode(),
            message_id=message.message_id,
            correlation_id=message.message_id,
            message_type=outcome.message.type,
        )

    async def _answer_without_message_id(
        self,
        delivery: Delivery,
        partner: Partner,
        errors: list[ErrorItem],
        melding_ref: str | None,
    ) -> None:
        # No idempotency key, so nothing to dedup on: answer at once. The receipt id is
        # derived from the body, so a redelivery repeats the same receipt.
        digest = hashlib.sha256(delivery.message.body).hexdigest()
        receipt = Receipt(
            in_reply_to=None, status="rejected", melding_ref=melding_ref, errors=errors
        )
        out = receipt_message(
            partner.id, receipt, message_id=uuid.uuid5(_NO_ID_NS, f"{partner.id}/{digest}")
        )
        await self._rt.publisher.publish(
            out.exchange,
            out.routing_key,
            out.body,
            message_id=str(out.message_id),
            message_type=out.message_type,
        )


def _ref_of(outcome: object) -> str | None:
    return (
        outcome.melding_ref
        if isinstance(outcome, Invalid)
        else getattr(getattr(outcome, "message", None), "melding_ref", None)
    )


__all__ = ["IngestHandler", "json"]
