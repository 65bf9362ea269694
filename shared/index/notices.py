"""Turn a match decision into the notices and e-mails the notifier will send.

Every notice names the youth only by the recipient's own melding_ref; nothing here
carries a BSN, surname or birth date (the matcher never has them in this form).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.amqp.topology import INTERNAL_EXCHANGE, NOTIFIER_KEY
from shared.contract.outbound import EndReason, MatchNotice, MeldingEnded, RegieNotice
from shared.db.outbox import OutboundMessage
from shared.envelopes import (
    NOTIFY_BATCH_TYPE,
    NOTIFY_TYPE,
    EmailJob,
    NotifyEvent,
    PartnerNotice,
    chunked,
    derived_id,
)
from shared.index.domain import StoredMelding
from shared.region.model import Municipality, RegionConfig


@dataclass(frozen=True)
class Participant:
    melding: StoredMelding
    organisation: str
    sector: str

    def contact(self) -> dict[str, Any]:
        r = self.melding.reporter
        return {"name": r.name, "email": r.email, "phone": r.phone}

    def as_counterpart(self) -> dict[str, Any]:
        return {
            "partner": self.melding.partner_id,
            "organisation": self.organisation,
            "sector": self.sector,
            "reporter": self.contact(),
            "registered_at": self.melding.registered_at.isoformat(),
            "archived": not self.melding.active,
        }

    def as_lead(self) -> dict[str, Any]:
        return {
            "partner": self.melding.partner_id,
            "organisation": self.organisation,
            "reporter": self.contact(),
        }


def _notice(event_id: uuid.UUID, recipient: Participant, model: BaseModel) -> PartnerNotice:
    body = model.model_dump(mode="json")
    return PartnerNotice(
        partner_id=recipient.melding.partner_id,
        message_id=derived_id(
            event_id, "notice", recipient.melding.partner_id, str(recipient.melding.id)
        ),
        message_type=body["type"],
        body=body,
    )


def _email(event_id: uuid.UUID, key: str, to: str, template: Any, data: dict[str, Any]) -> EmailJob:
    return EmailJob(
        message_id=derived_id(event_id, "email", key), to=to, template=template, data=data
    )


def match_event(
    *,
    match_id: uuid.UUID,
    newcomer: Participant,
    counterparts: Sequence[Participant],
    lead: Participant | None,
    municipality: Municipality | None,
) -> NotifyEvent:
    """A new melding joined: match.notice to the newcomer (naming every counterpart) and
    to each counterpart (naming the newcomer); an e-mail to every involved reporter and
    to the coordinator of the youth's municipality."""
    event_id = uuid.uuid4()
    lead_body = lead.as_lead() if lead else None
    notices = [
        _notice(
            event_id,
            newcomer,
            MatchNotice.model_validate(
                {
                    "type": "match.notice",
                    "match_id": str(match_id),
                    "melding_ref": newcomer.melding.melding_ref,
                    "counterparts": [c.as_counterpart() for c in counterparts],
                    "lead": lead_body,
                }
            ),
        )
    ]
    for other in counterparts:
        notices.append(
            _notice(
                event_id,
                other,
                MatchNotice.model_validate(
                    {
                        "type": "match.notice",
                        "match_id": str(match_id),
                        "melding_ref": other.melding.melding_ref,
                        "counterparts": [newcomer.as_counterpart()],
                        "lead": lead_body,
                    }
                ),
            )
        )
    involved = [newcomer, *counterparts]
    emails = [
        _email(
            event_id,
            f"reporter/{p.melding.id}",
            p.melding.reporter.email,
            "match_reporter",
            {
                "match_id": str(match_id),
                "melding_ref": p.melding.melding_ref,
                "organisation": p.organisation,
                "own_archived": not p.melding.active,
                "counterparts": [c.as_counterpart() for c in involved if c is not p],
                "lead": lead_body,
                "lead_is_yours": lead is not None and lead.melding.id == p.melding.id,
            },
        )
        for p in involved
    ]
    if municipality is None:
        return NotifyEvent(event_id=event_id, notices=notices, emails=emails)
    emails.append(
        _email(
            event_id,
            "coordinator",
            municipality.coordinator_email,
            "match_coordinator",
            {
                "match_id": str(match_id),
                "municipality": municipality.name,
                "participants": [
                    {**p.as_counterpart(), "melding_ref": p.melding.melding_ref} for p in involved
                ],
                "lead": lead_body,
            },
        )
    )
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def regie_event(
    *,
    match_id: uuid.UUID,
    members: Sequence[Participant],
    lead: Participant | None,
    escalated: bool,
    municipality: Municipality,
    coordinator_template: Any | None,
) -> NotifyEvent:
    """A lead set, cleared or escalated: every active member hears it."""
    event_id = uuid.uuid4()
    lead_body = lead.as_lead() if lead else None
    notices = [
        _notice(
            event_id,
            member,
            RegieNotice.model_validate(
                {
                    "type": "regie.notice",
                    "match_id": str(match_id),
                    "melding_ref": member.melding.melding_ref,
                    "lead": lead_body,
                    "escalated": escalated,
                }
            ),
        )
        for member in members
    ]
    emails = []
    if coordinator_template is not None:
        emails.append(
            _email(
                event_id,
                "coordinator",
                municipality.coordinator_email,
                coordinator_template,
                {
                    "match_id": str(match_id),
                    "municipality": municipality.name,
                    "lead": lead_body,
                    "participants": [
                        {**p.as_counterpart(), "melding_ref": p.melding.melding_ref}
                        for p in members
                    ],
                },
            )
        )
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def notify_message(event: NotifyEvent) -> OutboundMessage:
    """The outbox row that hands an event to the notifier."""
    return OutboundMessage(
        exchange=INTERNAL_EXCHANGE,
        routing_key=NOTIFIER_KEY,
        body=event.model_dump_json().encode(),
        message_type=NOTIFY_TYPE,
        message_id=event.event_id,
    )


def merge_notify_messages(messages: Sequence[OutboundMessage]) -> list[OutboundMessage]:
    """The notify messages among `messages` as `notify.batch` messages of at most
    ITEMS_PER_MESSAGE events, in the place of the first; the others as they were. One
    broker message per 32 events instead of one per event."""
    events = [m for m in messages if m.message_type == NOTIFY_TYPE]
    out: list[OutboundMessage] = []
    for message in messages:
        if message.message_type != NOTIFY_TYPE:
            out.append(message)
        elif message is events[0]:
            out.extend(_notify_batch(chunk) for chunk in chunked(events))
    return out


def _notify_batch(events: Sequence[OutboundMessage]) -> OutboundMessage:
    if len(events) == 1:
        return events[0]
    return OutboundMessage(
        exchange=INTERNAL_EXCHANGE,
        routing_key=NOTIFIER_KEY,
        # The bodies are NotifyEvent JSON already: wrapped, not parsed and dumped again.
        body=b'{"items":[' + b",".join(m.body for m in events) + b"]}",
        message_type=NOTIFY_BATCH_TYPE,
        message_id=derived_id(events[0].message_id, *(str(m.message_id) for m in events)),
    )


def participant(region: RegionConfig, melding: StoredMelding) -> Participant:
    partner = region.partners_by_id.get(melding.partner_id)
    # A partner removed from the region config still has its meldingen until they end.
    organisation = partner.name if partner else melding.partner_id
    sector = partner.sector.value if partner else "onbekend"
    return Participant(melding, organisation, sector)


def ended_event(melding: StoredMelding, reason: EndReason) -> NotifyEvent:
    event_id = uuid.uuid4()
    owner = Participant(melding, "", "")
    body = MeldingEnded(type="melding.ended", melding_ref=melding.melding_ref, reason=reason)
    return NotifyEvent(event_id=event_id, notices=[_notice(event_id, owner, body)])
