"""Turn a match decision into the notices and e-mails the notifier will send.

Every notice names the youth only by the recipient's own melding_ref; nothing here
carries a BSN, surname or birth date (the matcher never has them in this form).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.amqp.topology import INTERNAL_EXCHANGE, NOTIFIER_KEY
from shared.contract.outbound import (
    UNKNOWN_SECTOR,
    EndReason,
    MatchEnded,
    MatchNotice,
    MeldingEnded,
    RegieNotice,
)
from shared.envelopes import (
    NOTIFY_BUNDLE_TYPE,
    NOTIFY_TYPE,
    EmailJob,
    NotifyEvent,
    PartnerNotice,
    chunked,
    derived_id,
)
from shared.index.domain import StoredMelding
from shared.outgoing import OutboundMessage
from shared.region.model import Municipality, RegionConfig


@dataclass(frozen=True)
class Participant:
    melding: StoredMelding
    organisation: str
    sector: str
    # False for a retired partner and for one the region config no longer names: its
    # melding is still shown to others, but it is sent nothing.
    receives_notices: bool = True

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


def _notices(
    event_id: uuid.UUID, addressed: Iterable[tuple[Participant, BaseModel]]
) -> list[PartnerNotice]:
    return [_notice(event_id, p, model) for p, model in addressed if p.receives_notices]


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
    addressed: list[tuple[Participant, BaseModel]] = [
        (
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
        addressed.append(
            (
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
    notices = _notices(event_id, addressed)
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
    assigned: bool = False,
) -> NotifyEvent:
    """A lead set, cleared or escalated: every active member hears it. A lead the
    coordinator `assigned` is also told to its reporter, by e-mail (nobody chose it
    themselves there)."""
    event_id = uuid.uuid4()
    lead_body = lead.as_lead() if lead else None
    notices = _notices(
        event_id,
        (
            (
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
        ),
    )
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
    if assigned and lead is not None:
        emails.append(_lead_assigned_email(event_id, match_id, lead, members, municipality))
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def _lead_assigned_email(
    event_id: uuid.UUID,
    match_id: uuid.UUID,
    lead: Participant,
    members: Sequence[Participant],
    municipality: Municipality,
) -> EmailJob:
    return _email(
        event_id,
        f"lead/{lead.melding.id}",
        lead.melding.reporter.email,
        "lead_assigned",
        {
            "match_id": str(match_id),
            "melding_ref": lead.melding.melding_ref,
            "organisation": lead.organisation,
            "municipality": municipality.name,
            "counterparts": [p.as_counterpart() for p in members if p is not lead],
        },
    )


def match_ended_event(*, match_id: uuid.UUID, remaining: Sequence[Participant]) -> NotifyEvent:
    """The group ended: each partner whose melding in it is still active hears that
    the match is over (no e-mail: nobody needs to act on it)."""
    event_id = uuid.uuid4()
    notices = _notices(
        event_id,
        (
            (p, MatchEnded(match_id=str(match_id), melding_ref=p.melding.melding_ref))
            for p in remaining
        ),
    )
    return NotifyEvent(event_id=event_id, notices=notices)


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
        message_type=NOTIFY_BUNDLE_TYPE,
        message_id=derived_id(events[0].message_id, *(str(m.message_id) for m in events)),
    )


def participant(region: RegionConfig, melding: StoredMelding) -> Participant:
    partner = region.partners_by_id.get(melding.partner_id)
    if partner is None:
        # Dropped from the config by an older version (`region apply` now refuses to
        # drop a partner with meldingen): still shown, by its id, and sent nothing.
        return Participant(melding, melding.partner_id, UNKNOWN_SECTOR, receives_notices=False)
    return Participant(melding, partner.name, partner.sector.value, not partner.retired)


def ended_event(melding: StoredMelding, reason: EndReason) -> NotifyEvent:
    event_id = uuid.uuid4()
    owner = Participant(melding, "", "")
    body = MeldingEnded(type="melding.ended", melding_ref=melding.melding_ref, reason=reason)
    return NotifyEvent(event_id=event_id, notices=[_notice(event_id, owner, body)])
