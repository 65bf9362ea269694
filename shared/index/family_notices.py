"""Who is told of a family match, and the lookup that asks a register for the facts.

A `family.notice` names the recipient's own melding and the other professional, never
the other child's melding_ref or anything else about that child. The coordinator of
each youth's municipality gets one e-mail per family match.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.amqp.topology import OUTBOUND_EXCHANGE
from shared.contract.outbound import FamilyNotice, PersonLookup, dump_json
from shared.envelopes import EmailJob, NotifyEvent, PartnerNotice, derived_id
from shared.index.family import Relation
from shared.index.notices import Participant
from shared.outgoing import OutboundMessage
from shared.region.model import Municipality, RegionConfig


def family_counterpart(p: Participant) -> dict[str, Any]:
    """A participant as the other side of a family match sees it (no melding_ref)."""
    return {
        "partner": p.melding.partner_id,
        "organisation": p.organisation,
        "sector": p.sector,
        "reporter": p.contact(),
        "registered_at": p.melding.registered_at.isoformat(),
    }


def family_event(
    *,
    family_match_id: uuid.UUID,
    relation: Relation,
    pair: tuple[Participant, Participant],
    municipalities: Sequence[Municipality],
) -> NotifyEvent:
    """`family.notice` and an e-mail to each of the two, and an e-mail to the
    coordinator of each (distinct) municipality the two youths live in."""
    event_id = family_match_id  # one event per family match: its ids are stable
    notices: list[PartnerNotice] = []
    emails: list[EmailJob] = []
    for me, other in (pair, pair[::-1]):
        if me.receives_notices:
            body = FamilyNotice.model_validate(
                {
                    "type": "family.notice",
                    "family_match_id": str(family_match_id),
                    "melding_ref": me.melding.melding_ref,
                    "relation": relation,
                    "counterpart": family_counterpart(other),
                }
            ).model_dump(mode="json")
            notices.append(
                PartnerNotice(
                    partner_id=me.melding.partner_id,
                    message_id=derived_id(event_id, "notice", me.melding.partner_id),
                    message_type="family.notice",
                    body=body,
                )
            )
        emails.append(
            EmailJob(
                message_id=derived_id(event_id, "email", f"reporter/{me.melding.id}"),
                to=me.melding.reporter.email,
                template="family_reporter",
                data={
                    "family_match_id": str(family_match_id),
                    "melding_ref": me.melding.melding_ref,
                    "organisation": me.organisation,
                    "relation": relation,
                    "counterpart": family_counterpart(other),
                },
            )
        )
    seen: set[str] = set()
    for municipality in municipalities:
        if municipality.code in seen:
            continue
        seen.add(municipality.code)
        emails.append(
            EmailJob(
                message_id=derived_id(event_id, "email", f"coordinator/{municipality.code}"),
                to=municipality.coordinator_email,
                template="family_coordinator",
                data={
                    "family_match_id": str(family_match_id),
                    "municipality": municipality.name,
                    "relation": relation,
                    "participants": [family_counterpart(p) for p in pair],
                },
            )
        )
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def lookup_messages(
    region: RegionConfig, lookup_id: uuid.UUID, bsn: str, sent_at: datetime
) -> list[OutboundMessage]:
    """`person.lookup` to every population register of the region: the only outbound
    message with a BSN, and it goes to registers only. Each sending has ids of its own
    (a resend is a new question, not a duplicate delivery)."""
    body = dump_json(PersonLookup(lookup_id=str(lookup_id), bsn=bsn))
    return [
        OutboundMessage(
            exchange=OUTBOUND_EXCHANGE,
            routing_key=register.id,
            body=body,
            message_type="person.lookup",
            message_id=derived_id(lookup_id, register.id, sent_at.isoformat()),
        )
        for register in region.population_registers
    ]
