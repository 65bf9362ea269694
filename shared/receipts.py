"""Receipts: exactly one per inbound message, written to the outbox with the outcome.

A receipt for a handled message has a stable id derived from the inbound message, so
re-publishing it is a duplicate delivery the partner can drop. A `duplicate` receipt
answers a new delivery of an old message_id and so gets an id of its own.
"""

from __future__ import annotations

import uuid

from shared.amqp.topology import OUTBOUND_EXCHANGE
from shared.contract.errors import ErrorItem
from shared.contract.outbound import Receipt, dump_json
from shared.db import inbox
from shared.db.outbox import OutboundMessage
from shared.db.pool import Conn

_RECEIPT_NS = uuid.UUID("6f1d3f0e-8a39-4a57-9d0c-2b9f3c1e7a10")


def receipt_id(partner_id: str, in_reply_to: str) -> uuid.UUID:
    return uuid.uuid5(_RECEIPT_NS, f"{partner_id}/{in_reply_to}")


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
    partner_id: str, in_reply_to: str, melding_ref: str | None, inform: list[str] | None = None
) -> OutboundMessage:
    receipt = Receipt(
        in_reply_to=in_reply_to,
        status="accepted",
        melding_ref=melding_ref,
        errors=[],
        inform=inform,
    )
    return receipt_message(partner_id, receipt, message_id=receipt_id(partner_id, in_reply_to))


def rejected(
    partner_id: str, in_reply_to: str, melding_ref: str | None, errors: list[ErrorItem]
) -> OutboundMessage:
    receipt = Receipt(
        in_reply_to=in_reply_to, status="rejected", melding_ref=melding_ref, errors=errors
    )
    return receipt_message(partner_id, receipt, message_id=receipt_id(partner_id, in_reply_to))


async def claim_or_answer_duplicate(
    conn: Conn,
    partner_id: str,
    message_id: str,
    *,
    seen_before: bool,
    melding_ref: str | None,
) -> tuple[bool, list[OutboundMessage]]:
    """Claim the message in the inbox. Returns (is_new, messages to write).

    Not new and seen before: our own earlier attempt committed its outcome (and its
    receipt) already, so there is nothing more to say. Not new and fresh: the partner
    re-used a message_id, which gets a `duplicate` receipt and no effect.
    """
    if await inbox.claim(conn, partner_id, message_id):
        return True, []
    return False, answer_to_handled(
        partner_id, message_id, seen_before=seen_before, melding_ref=melding_ref
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
