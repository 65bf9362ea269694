"""Receipts: exactly one per inbound message, written to the outbox with the outcome.

The receipt of a handled message takes its id from the message's inbox row (see
:mod:`shared.db.inbox`): one id per handling, kept by the outbox row, so re-publishing
the receipt is a duplicate delivery the partner can drop, while a message_id that
comes back after the dedup window is answered with a receipt id never used before.
A `duplicate` receipt answers a new delivery of an old message_id and so gets an id
of its own.
"""

from __future__ import annotations

import uuid

from shared.amqp.topology import OUTBOUND_EXCHANGE
from shared.contract.errors import ErrorItem
from shared.contract.outbound import Receipt, dump_json
from shared.db import inbox
from shared.db.pool import Conn
from shared.outgoing import OutboundMessage


def receipt_message(partner_id: str, receipt: Receipt, *, message_id: uuid.UUID) -> OutboundMessage:
    return OutboundMessage(
        exchange=OUTBOUND_EXCHANGE,
        routing_key=partner_id,
        body=dump_json(receipt),
        message_type="receipt",
        message_id=message_id,
        correlation_id=receipt.in_reply_to,
    )


def accepted(
    partner_id: str,
    in_reply_to: str,
    melding_ref: str | None,
    inform: list[str] | None = None,
    *,
    receipt_id: uuid.UUID,
) -> OutboundMessage:
    receipt = Receipt(
        in_reply_to=in_reply_to,
        status="accepted",
        melding_ref=melding_ref,
        errors=[],
        inform=inform,
    )
    return receipt_message(partner_id, receipt, message_id=receipt_id)


def rejected(
    partner_id: str,
    in_reply_to: str,
    melding_ref: str | None,
    errors: list[ErrorItem],
    *,
    receipt_id: uuid.UUID,
) -> OutboundMessage:
    receipt = Receipt(
        in_reply_to=in_reply_to, status="rejected", melding_ref=melding_ref, errors=errors
    )
    return receipt_message(partner_id, receipt, message_id=receipt_id)


async def claim_or_answer_duplicate(
    conn: Conn, partner_id: str, message_id: str, *, melding_ref: str | None
) -> tuple[uuid.UUID | None, list[OutboundMessage]]:
    """Claim the message in the inbox for a publish not answered before (see
    :mod:`shared.db.arrivals`). Returns (the id for the receipt of this new handling,
    or None when the message_id was handled before; messages to write): a message_id
    handled before was re-used by the partner, which gets a `duplicate` receipt."""
    receipt_id = await inbox.claim(conn, partner_id, message_id)
    if receipt_id is not None:
        return receipt_id, []
    return None, answer_to_handled(
        partner_id, message_id, seen_before=False, melding_ref=melding_ref
    )


def answer_to_handled(
    partner_id: str, message_id: str, *, seen_before: bool, melding_ref: str | None
) -> list[OutboundMessage]:
    """What to say to a message the inbox already holds: nothing when it was ours to
    handle again, a `duplicate` receipt when the partner re-used the message_id."""
    if seen_before:
        return []
    receipt = Receipt(
        in_reply_to=message_id, status="duplicate", melding_ref=melding_ref, errors=[]
    )
    return [receipt_message(partner_id, receipt, message_id=uuid.uuid4())]
