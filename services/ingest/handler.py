"""The front door: authenticate the partner, validate, and make sure every inbound
message ends in a durable outcome (a receipt, or `vi.rejected`).

* No or unknown ``user_id``: nobody to answer. The message is copied whole to
  ``vi.rejected`` with the reason in header ``x-vi-error``.
* The sender is resolved by ``services/ingest/sender.py``: a partner's own login, or
  the portal's login acting for a partner on channel "portal" (contract §9). A
  sender that may not send the message (a retired partner, a partner using the
  portal's headers, the portal without a valid ``x-vi-on-behalf-of`` or
  ``x-vi-actor``, a coordinator's header from anyone but the portal or naming no
  municipality of the region) is answered ``not_authorized``, in the mailbox of the
  partner acted for, or in the portal's own ``partner.portal``. A coordinator's
  ``regie.assign`` is forwarded under the id ``portal``: its inbox entry and its
  receipt are the portal's.
* No usable ``message_id``: nothing to deduplicate on, so the receipt
  (``in_reply_to: null``) is published at once. Its own message_id is derived from
  the partner, routing key, body and the answer, so a redelivery repeats the very
  same receipt.
* Every message with a usable ``message_id`` is first recorded as an *arrival*
  (`shared.db.arrivals`): a fresh publish gets a new one, a delivery that may have
  been handled before is bound to the one of its publish. An arrival is answered
  once, so a partner's re-sent message_id gets ``duplicate`` even when it comes as a
  broker redelivery, and a redelivered original never does. Once the broker
  confirmed the ack, the arrivals are closed (`acked`).
* Invalid message: the arrival, the inbox claim and the ``rejected`` receipt are
  written in one transaction (a re-used message_id gets ``duplicate`` instead).
* Valid message: its arrival recorded (one statement for all messages that queued up
  together), it is forwarded to the matcher, which claims the inbox and answers.
  Valid messages that queue up together are forwarded as one `command.batch` message.

Ingest keeps no state in memory beyond the deliveries it holds (its arrivals are in
the database), so any number of replicas can share the queue.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from typing import Any

import asyncpg

from services.ingest.pack import Inbound
from services.ingest.sender import Sender, identify
from shared.amqp.consuming import ERROR_HEADER
from shared.amqp.publisher import Publisher
from shared.amqp.topology import REJECTED_QUEUE
from shared.clock import Clock, utcnow
from shared.commands import commands_message
from shared.contract.errors import ErrorItem
from shared.contract.inbound import inbound_type
from shared.contract.outbound import Receipt, dump_json
from shared.contract.validation import Invalid, check_message_id, validate_inbound
from shared.db import arrivals
from shared.db.arrivals import Arrival
from shared.db.outbox import Outbox
from shared.envelopes import Command
from shared.lanes import Lane
from shared.logs import get_logger, message_context
from shared.receipts import claim_or_answer_duplicate, receipt_message, rejected
from shared.region.model import RegionConfig
from shared.region.store import RegionCache

log = get_logger(__name__)

_NO_ID_NS = uuid.UUID("0b7e0b55-35a4-4c53-a3a5-1d1e56c0c6c8")


class IngestHandler:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        outbox: Outbox,
        publisher: Publisher,
        region: RegionCache,
        clock: Clock = utcnow,
        *,
        lane: Lane = Lane.LIVE,
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._publisher = publisher
        self._region = region
        self._clock = clock
        # Valid messages go on to the matcher in the lane they came in.
        self._lane = lane

    async def __call__(self, deliveries: Sequence[Inbound]) -> None:
        """Answer what needs answering here; forward all valid ones as one message."""
        region = await self._region.get()
        valid: list[tuple[Inbound, Command]] = []
        for delivery in deliveries:
            message_id = delivery.message_id
            with message_context(
                message_id=message_id,
                correlation_id=delivery.correlation_id or message_id,
            ):
                command = await self._triage(delivery, region)
            if command is not None:
                valid.append((delivery, command))
        await self._forward(valid)

    async def acked(self, deliveries: Sequence[Inbound]) -> None:
        """The broker confirmed the acks: these publishes cannot be delivered again."""
        await close_arrivals(self._pool, deliveries)

    async def _forward(self, valid: Sequence[tuple[Inbound, Command]]) -> None:
        """Record the arrivals of valid messages, then hand them to the matcher."""
        if not valid:
            return
        async with self._pool.acquire() as conn:
            ids = await arrivals.record(
                conn, [_arrival(d, c.partner_id, c.message_id) for d, c in valid]
            )
        for (delivery, _), arrival_id in zip(valid, ids, strict=True):
            delivery.binding.arrival_id = arrival_id
        await self._publisher.publish(
            commands_message(
                [
                    command.model_copy(update={"arrival_id": arrival_id})
                    for (_, command), arrival_id in zip(valid, ids, strict=True)
                ],
                self._lane,
            )
        )

    async def _triage(self, delivery: Inbound, region: RegionConfig) -> Command | None:
        """The command to forward, or None when the message was answered here."""
        user_id = delivery.user_id
        sender = identify(user_id, delivery.headers, region)
        if sender is None:
            await self._reject_unknown_sender(delivery, user_id)
            return None
        portal: dict[str, object] = {"via_portal": True} if sender.via_portal else {}
        if sender.coordinator is not None:
            portal["coordinator"] = sender.coordinator
        with message_context(partner=sender.answer_to, **portal):
            return await self._handle(delivery, sender, region.municipalities_by_code.keys())

    async def _reject_unknown_sender(self, delivery: Inbound, user_id: str | None) -> None:
        reason = (
            "no user_id property: publish with user_id set to your broker login"
            if not user_id
            else f"user_id {user_id!r} is not a partner of this region"
        )
        log.warning("inbound_rejected_unknown_sender", reason=reason)
        await self._publisher.publish(
            delivery.copy_for_runtime(REJECTED_QUEUE, {ERROR_HEADER: reason})
        )

    async def _handle(
        self, delivery: Inbound, sender: Sender, municipalities: Collection[str]
    ) -> Command | None:
        outcome = validate_inbound(
            inbound_type(delivery.routing_key),
            delivery.body,
            roles=sender.roles,
            municipalities=municipalities,
            now=self._clock(),
        )
        if sender.refusal is not None:
            outcome = Invalid([sender.refusal], outcome.melding_ref)
        message_id = delivery.message_id
        id_error = check_message_id(message_id)
        if id_error is not None or message_id is None:
            errors = [id_error] if id_error is not None else []
            if isinstance(outcome, Invalid):
                errors += outcome.errors
            await self._answer_without_message_id(
                delivery, sender.answer_to, errors, outcome.melding_ref
            )
            return None
        if isinstance(outcome, Invalid):
            await self._reject(delivery, sender.answer_to, message_id, outcome)
            return None
        # A sender that is neither a partner nor a coordinator is refused above.
        assert sender.partner is not None or sender.coordinator is not None
        return Command(
            partner_id=sender.answer_to,
            message_id=message_id,
            seen_before=delivery.seen_before,
            message=outcome.message,
            portal_user=sender.portal_user,
            coordinator=sender.coordinator,
        )

    async def _reject(
        self, delivery: Inbound, answer_to: str, message_id: str, outcome: Invalid
    ) -> None:
        log.info("inbound_invalid", codes=sorted({e.code.value for e in outcome.errors}))
        async with self._outbox.unit_of_work() as uow:
            [arrival_id] = await arrivals.record(
                uow.conn, [_arrival(delivery, answer_to, message_id)]
            )
            if await arrivals.answer(uow.conn, [arrival_id]):
                receipt_id, answers = await claim_or_answer_duplicate(
                    uow.conn, answer_to, message_id, melding_ref=outcome.melding_ref
                )
                if receipt_id is not None:
                    answers = [
                        rejected(
                            answer_to,
                            message_id,
                            outcome.melding_ref,
                            outcome.errors,
                            receipt_id=receipt_id,
                        )
                    ]
                uow.emit(*answers)
            else:
                log.info("inbound_already_handled", answered=False)
        # Only once it is committed: a retry in this process must not trust a rollback.
        delivery.binding.arrival_id = arrival_id

    async def _answer_without_message_id(
        self,
        delivery: Inbound,
        answer_to: str,
        errors: list[ErrorItem],
        melding_ref: str | None,
    ) -> None:
        log.info("inbound_without_message_id", codes=sorted({e.code.value for e in errors}))
        receipt = Receipt(
            in_reply_to=None, status="rejected", melding_ref=melding_ref, errors=errors
        )
        await self._publisher.publish(
            receipt_message(
                answer_to, receipt, message_id=_id_without_message_id(answer_to, delivery, receipt)
            )
        )


def _arrival(delivery: Inbound, partner_id: str, message_id: str) -> Arrival:
    return Arrival(
        partner_id=partner_id,
        message_id=message_id,
        seen_before=delivery.seen_before,
        known=delivery.binding.arrival_id,
    )


def _id_without_message_id(partner_id: str, delivery: Inbound, receipt: Receipt) -> uuid.UUID:
    """A receipt id for a message that has no id of its own to remember it by.

    Derived from the message (routing key and body) and from the answer itself: a
    redelivery answered the same way repeats the very same receipt, which the partner
    drops, while a different answer (the clock or the region config moved on) gets a
    new id, so it is not dropped as a copy of the first.
    """
    digest = hashlib.sha256()
    for part in (
        delivery.routing_key.encode("utf-8", "surrogateescape"),
        delivery.body,
        dump_json(receipt),
    ):
        digest.update(len(part).to_bytes(8, "big") + part)
    return uuid.uuid5(_NO_ID_NS, f"{partner_id}/{digest.hexdigest()}")


async def close_arrivals(pool: asyncpg.Pool[Any], messages: Sequence[Inbound]) -> None:
    """Close the arrivals `messages` are bound to: the broker confirmed the ack of
    their publishes, which cannot be delivered again (`shared.db.arrivals`)."""
    ids = [m.binding.arrival_id for m in messages if m.binding.arrival_id is not None]
    if ids:
        async with pool.acquire() as conn:
            await arrivals.close(conn, ids)
