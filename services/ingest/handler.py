"""The front door: authenticate the partner, validate, and make sure every inbound
message ends in a durable outcome (a receipt, or `vi.rejected`).

* No or unknown ``user_id``: nobody to answer. The message is copied whole to
  ``vi.rejected`` with the reason in header ``x-vi-error``.
* A retired partner: every message is answered ``not_authorized``.
* No usable ``message_id``: nothing to deduplicate on, so the receipt
  (``in_reply_to: null``) is published at once. Its own message_id is derived from
  the partner, routing key, body and the answer, so a redelivery repeats the very
  same receipt.
* Invalid message: the inbox claim and the ``rejected`` receipt are written in one
  transaction (a re-used message_id gets ``duplicate`` instead).
* Valid message: forwarded to the matcher, which claims the inbox and answers. No
  database work happens here on this path. Valid messages that queue up together are
  forwarded as one `command.batch` message.

Ingest keeps no state of its own, so any number of replicas can share the queue.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence

from shared.amqp.consumer import ERROR_HEADER, Delivery
from shared.amqp.topology import REJECTED_QUEUE
from shared.clock import Clock, utcnow
from shared.commands import send_command, send_commands
from shared.contract.errors import NOT_A_PARTNER_ANY_MORE, ErrorItem
from shared.contract.inbound import inbound_type
from shared.contract.outbound import Receipt, dump_json
from shared.contract.validation import Invalid, check_message_id, validate_inbound
from shared.envelopes import Command
from shared.lanes import Lane
from shared.logs import get_logger, message_context
from shared.receipts import claim_or_answer_duplicate, receipt_message, rejected
from shared.region.model import Partner, RegionConfig
from shared.service import Runtime

log = get_logger(__name__)

_NO_ID_NS = uuid.UUID("0b7e0b55-35a4-4c53-a3a5-1d1e56c0c6c8")


class IngestHandler:
    def __init__(self, runtime: Runtime, clock: Clock = utcnow, *, lane: Lane = Lane.LIVE) -> None:
        self._rt = runtime
        self._clock = clock
        # Valid messages go on to the matcher in the lane they came in.
        self._lane = lane

    async def __call__(self, delivery: Delivery) -> None:
        command = await self._triage(delivery, await self._rt.region.get())
        if command is not None:
            await send_command(self._rt.publisher, command, self._lane)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Answer what needs answering here; forward all valid ones as one message."""
        region = await self._rt.region.get()
        commands: list[Command] = []
        for delivery in deliveries:
            message_id = delivery.message_id
            with message_context(
                message_id=message_id,
                correlation_id=delivery.message.correlation_id or message_id,
            ):
                command = await self._triage(delivery, region)
            if command is not None:
                commands.append(command)
        await send_commands(self._rt.publisher, commands, self._lane)

    async def _triage(self, delivery: Delivery, region: RegionConfig) -> Command | None:
        """The command to forward, or None when the message was answered here."""
        user_id = delivery.user_id
        partner = region.partners_by_broker_user.get(user_id) if user_id else None
        if partner is None:
            await self._reject_unknown_sender(delivery, user_id)
            return None
        with message_context(partner=partner.id):
            return await self._handle(delivery, partner, region.municipalities_by_code.keys())

    async def _reject_unknown_sender(self, delivery: Delivery, user_id: str | None) -> None:
        reason = (
            "no user_id property: publish with user_id set to your broker login"
            if not user_id
            else f"user_id {user_id!r} is not a partner of this region"
        )
        log.warning("inbound_rejected_unknown_sender", reason=reason)
        await self._rt.publisher.publish_many(
            [delivery.copy_for_runtime(REJECTED_QUEUE, {ERROR_HEADER: reason})]
        )

    async def _handle(
        self, delivery: Delivery, partner: Partner, municipalities: Collection[str]
    ) -> Command | None:
        outcome = validate_inbound(
            inbound_type(delivery.routing_key),
            delivery.message.body,
            roles=partner.role_names,
            municipalities=municipalities,
            now=self._clock(),
        )
        if partner.retired:
            outcome = Invalid([NOT_A_PARTNER_ANY_MORE], outcome.melding_ref)
        message_id = delivery.message_id
        id_error = check_message_id(message_id)
        if id_error is not None or message_id is None:
            errors = [id_error] if id_error is not None else []
            if isinstance(outcome, Invalid):
                errors += outcome.errors
            await self._answer_without_message_id(delivery, partner, errors, outcome.melding_ref)
            return None
        if isinstance(outcome, Invalid):
            await self._reject(delivery, partner, message_id, outcome)
            return None
        return Command(
            partner_id=partner.id,
            message_id=message_id,
            seen_before=delivery.seen_before,
            message=outcome.message,
        )

    async def _reject(
        self, delivery: Delivery, partner: Partner, message_id: str, outcome: Invalid
    ) -> None:
        log.info("inbound_invalid", codes=sorted({e.code.value for e in outcome.errors}))
        async with self._rt.outbox.unit_of_work() as uow:
            receipt_id, answers = await claim_or_answer_duplicate(
                uow.conn,
                partner.id,
                message_id,
                seen_before=delivery.seen_before,
                melding_ref=outcome.melding_ref,
            )
            if receipt_id is not None:
                answers = [
                    rejected(
                        partner.id,
                        message_id,
                        outcome.melding_ref,
                        outcome.errors,
                        receipt_id=receipt_id,
                    )
                ]
            uow.emit(*answers)

    async def _answer_without_message_id(
        self,
        delivery: Delivery,
        partner: Partner,
        errors: list[ErrorItem],
        melding_ref: str | None,
    ) -> None:
        log.info("inbound_without_message_id", codes=sorted({e.code.value for e in errors}))
        receipt = Receipt(
            in_reply_to=None, status="rejected", melding_ref=melding_ref, errors=errors
        )
        out = receipt_message(
            partner.id, receipt, message_id=_id_without_message_id(partner.id, delivery, receipt)
        )
        await self._rt.publisher.publish(
            out.exchange,
            out.routing_key,
            out.body,
            message_id=str(out.message_id),
            message_type=out.message_type,
        )


def _id_without_message_id(partner_id: str, delivery: Delivery, receipt: Receipt) -> uuid.UUID:
    """A receipt id for a message that has no id of its own to remember it by.

    Derived from the message (routing key and body) and from the answer itself: a
    redelivery answered the same way repeats the very same receipt, which the partner
    drops, while a different answer (the clock or the region config moved on) gets a
    new id, so it is not dropped as a copy of the first.
    """
    digest = hashlib.sha256()
    for part in (
        delivery.routing_key.encode("utf-8", "surrogateescape"),
        delivery.message.body,
        dump_json(receipt),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return uuid.uuid5(_NO_ID_NS, f"{partner_id}/{digest.hexdigest()}")
