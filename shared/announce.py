"""Decisions made known: the notices and e-mails the notifier sends, and the messages
that carry them there (see the layering in `shared.index`).

`announce` turns the domain's decisions (`shared.index.decisions`) into outgoing
messages. It is the only module that builds a `NotifyEvent` or knows the notifier's
routing, and the one that addresses the population registers' `person.lookup`.

Every notice names the youth only by the recipient's own melding_ref; nothing here
carries a BSN, surname or birth date, except the lookup, which goes to the registers
only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from shared.amqp.topology import INTERNAL_EXCHANGE, NOTIFIER_KEY, OUTBOUND_EXCHANGE
from shared.contract.outbound import (
    EndReason,
    FamilyNotice,
    InformReminder,
    MatchEnded,
    MatchNotice,
    MeldingEnded,
    PersonLookup,
    RegieNotice,
    YouthMoved,
    dump_json,
)
from shared.dates import InformTarget
from shared.emails import (
    EmailData,
    FamilyCoordinator,
    FamilyReporter,
    LeadAssigned,
    LeadCoordinator,
    MatchCoordinator,
    MatchReporter,
    RegieEscalation,
    YouthMovedCoordinator,
)
from shared.emails import InformReminder as InformReminderEmail
from shared.envelopes import (
    NOTIFY_BUNDLE_TYPE,
    NOTIFY_TYPE,
    EmailJob,
    NotifyEvent,
    PartnerNotice,
    chunked,
    derived_id,
)
from shared.index.decisions import (
    Decision,
    Ended,
    FamilyMatched,
    InformDue,
    LeadChanged,
    Matched,
    MatchOver,
    Moved,
)
from shared.index.domain import StoredMelding
from shared.index.family import Relation
from shared.index.participants import Participant, participant
from shared.outgoing import OutboundMessage
from shared.region.model import Municipality, RegionConfig

CoordinatorTemplate = Literal["lead_coordinator", "regie_escalation"]


def announce(region: RegionConfig, decisions: Iterable[Decision]) -> list[OutboundMessage]:
    """The messages that tell what `decisions` say must be told, in their order."""
    return [notify_message(e) for d in decisions if (e := event_of(region, d)) is not None]


def event_of(region: RegionConfig, decision: Decision) -> NotifyEvent | None:
    """The notices and e-mails of one decision; None when nobody is to be told (a match
    over for partners that are sent nothing, a move with no active melding)."""
    match decision:
        case Matched():
            lead = decision.lead
            return match_event(
                match_id=decision.match_id,
                newcomer=participant(region, decision.newcomer),
                counterparts=[participant(region, m) for m in decision.counterparts],
                lead=participant(region, lead) if lead else None,
                municipality=region.municipalities_by_code.get(decision.municipality),
            )
        case LeadChanged():
            return lead_event(region, decision)
        case MatchOver():
            event = match_ended_event(
                match_id=decision.match_id,
                remaining=[participant(region, m) for m in decision.remaining],
            )
            return event if event.notices else None
        case Ended():
            return ended_event(decision.melding, decision.reason)
        case Moved():
            return moved_event(region, decision.active, decision.municipality)
        case InformDue():
            return reminder_event(
                decision.partner_id, decision.melding_ref, decision.reporter_email, decision.inform
            )
        case FamilyMatched():
            low, high = decision.pair
            return family_event(
                family_match_id=decision.family_match_id,
                relation=decision.relation,
                pair=(participant(region, low), participant(region, high)),
                municipalities=[
                    found
                    for code in decision.municipalities
                    if (found := region.municipalities_by_code.get(code)) is not None
                ],
            )


def _notice(
    event_id: uuid.UUID, partner_id: str, model: BaseModel, *id_parts: str
) -> PartnerNotice:
    body = model.model_dump(mode="json")
    return PartnerNotice(
        partner_id=partner_id,
        message_id=derived_id(event_id, "notice", partner_id, *id_parts),
        message_type=body["type"],
        body=body,
    )


def _notices(
    event_id: uuid.UUID, addressed: Iterable[tuple[Participant, BaseModel]]
) -> list[PartnerNotice]:
    """A notice to each participant that receives notices (one per melding)."""
    return [
        _notice(event_id, p.melding.partner_id, model, str(p.melding.id))
        for p, model in addressed
        if p.receives_notices
    ]


def _email(event_id: uuid.UUID, key: str, to: str, data: EmailData) -> EmailJob:
    return EmailJob(message_id=derived_id(event_id, "email", key), to=to, data=data)


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
    lead_info = lead.as_lead() if lead else None
    lead_body = lead_info.model_dump() if lead_info else None
    involved = [newcomer, *counterparts]
    # Each participant as the others see it, made once (the models are immutable).
    shown = {p.melding.id: p.as_counterpart() for p in involved}
    dumped = {melding_id: c.model_dump() for melding_id, c in shown.items()}

    def notice(to: Participant, named: Sequence[Participant]) -> MatchNotice:
        return MatchNotice.model_validate(
            {
                "type": "match.notice",
                "match_id": str(match_id),
                "melding_ref": to.melding.melding_ref,
                "counterparts": [dumped[c.melding.id] for c in named],
                "lead": lead_body,
            }
        )

    addressed: list[tuple[Participant, BaseModel]] = [(newcomer, notice(newcomer, counterparts))]
    addressed.extend((other, notice(other, [newcomer])) for other in counterparts)
    notices = _notices(event_id, addressed)
    emails = [
        _email(
            event_id,
            f"reporter/{p.melding.id}",
            p.melding.reporter.email,
            MatchReporter(
                match_id=match_id,
                melding_ref=p.melding.melding_ref,
                organisation=p.organisation,
                own_archived=not p.melding.active,
                counterparts=[shown[c.melding.id] for c in involved if c is not p],
                lead=lead_info,
                lead_is_yours=lead is not None and lead.melding.id == p.melding.id,
            ),
        )
        for p in involved
    ]
    if municipality is not None:
        emails.append(
            _email(
                event_id,
                "coordinator",
                municipality.coordinator_email,
                MatchCoordinator(
                    match_id=match_id,
                    municipality=municipality.name,
                    participants=[p.as_member() for p in involved],
                    lead=lead_info,
                ),
            )
        )
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def regie_event(
    *,
    match_id: uuid.UUID,
    members: Sequence[Participant],
    lead: Participant | None,
    escalated: bool,
    municipality: Municipality | None,
    coordinator_template: CoordinatorTemplate | None,
    assigned: bool = False,
) -> NotifyEvent:
    """A lead set, cleared or escalated: every active member hears it, and the
    coordinator of the youth's `municipality` by the `coordinator_template` e-mail. A
    lead the coordinator `assigned` is also told to its reporter, by e-mail (nobody chose
    it themselves there). Without a municipality (the region no longer names it) there
    is no coordinator to tell."""
    event_id = uuid.uuid4()
    lead_info = lead.as_lead() if lead else None
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
                        "lead": lead_info.model_dump() if lead_info else None,
                        "escalated": escalated,
                    }
                ),
            )
            for member in members
        ),
    )
    emails: list[EmailJob] = []
    if municipality is None:
        return NotifyEvent(event_id=event_id, notices=notices, emails=emails)
    participants = [p.as_member() for p in members]
    coordinator_data: EmailData | None = None
    if coordinator_template == "lead_coordinator":
        assert lead_info is not None  # the template tells who leads
        coordinator_data = LeadCoordinator(
            match_id=match_id,
            municipality=municipality.name,
            lead=lead_info,
            participants=participants,
        )
    elif coordinator_template == "regie_escalation":
        assert lead_info is None  # escalated: nobody leads
        coordinator_data = RegieEscalation(
            match_id=match_id, municipality=municipality.name, participants=participants
        )
    if coordinator_data is not None:
        emails.append(
            _email(event_id, "coordinator", municipality.coordinator_email, coordinator_data)
        )
    if assigned and lead is not None:
        emails.append(
            _email(
                event_id,
                f"lead/{lead.melding.id}",
                lead.melding.reporter.email,
                LeadAssigned(
                    match_id=match_id,
                    melding_ref=lead.melding.melding_ref,
                    organisation=lead.organisation,
                    municipality=municipality.name,
                    counterparts=[p.as_counterpart() for p in members if p is not lead],
                ),
            )
        )
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def lead_event(region: RegionConfig, decision: LeadChanged) -> NotifyEvent:
    """Who leads a match (or that nobody does): its active members hear it, and the
    coordinator of the youth's municipality, if the region names it."""
    municipality = region.municipalities_by_code.get(decision.municipality)
    people = [participant(region, m) for m in decision.members]
    lead = next((p for p in people if p.melding.id == decision.lead_melding_id), None)
    template: CoordinatorTemplate | None = (
        "regie_escalation" if decision.escalated else ("lead_coordinator" if lead else None)
    )
    return regie_event(
        match_id=decision.match_id,
        members=people,
        lead=lead,
        escalated=decision.escalated,
        municipality=municipality,
        coordinator_template=template,
        assigned=decision.assigned,
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


def ended_event(melding: StoredMelding, reason: EndReason) -> NotifyEvent:
    """The owner of a melding hears that it ended (not by its own withdraw)."""
    event_id = uuid.uuid4()
    body = MeldingEnded(type="melding.ended", melding_ref=melding.melding_ref, reason=reason)
    return NotifyEvent(
        event_id=event_id,
        notices=[_notice(event_id, melding.partner_id, body, str(melding.id))],
    )


def moved_event(
    region: RegionConfig, active: Sequence[StoredMelding], municipality_code: str
) -> NotifyEvent | None:
    """The youth moved: the owner of each active melding hears it (`youth.moved`), and
    the coordinator of the new municipality by e-mail. None when nobody is told."""
    event_id = uuid.uuid4()
    notices = [
        _notice(
            event_id,
            m.partner_id,
            YouthMoved(
                type="youth.moved", melding_ref=m.melding_ref, municipality=municipality_code
            ),
            str(m.id),
        )
        for m in active
    ]
    emails = []
    municipality = region.municipalities_by_code.get(municipality_code)
    if municipality is not None and active:
        emails.append(
            _email(
                event_id,
                "coordinator",
                municipality.coordinator_email,
                YouthMovedCoordinator(
                    municipality=municipality.name,
                    participants=[participant(region, m).as_member() for m in active],
                ),
            )
        )
    if not notices and not emails:
        return None
    return NotifyEvent(event_id=event_id, notices=notices, emails=emails)


def reminder_event(
    partner_id: str, melding_ref: str, email: str, inform: list[InformTarget]
) -> NotifyEvent:
    """Nothing recorded on informing the family: the reporter is reminded, once."""
    event_id = uuid.uuid4()
    body = InformReminder(type="inform.reminder", melding_ref=melding_ref, inform=inform)
    return NotifyEvent(
        event_id=event_id,
        notices=[_notice(event_id, partner_id, body)],
        emails=[
            _email(
                event_id,
                "reporter",
                email,
                InformReminderEmail(melding_ref=melding_ref, inform=inform),
            )
        ],
    )


def family_event(
    *,
    family_match_id: uuid.UUID,
    relation: Relation,
    pair: tuple[Participant, Participant],
    municipalities: Sequence[Municipality],
) -> NotifyEvent:
    """`family.notice` and an e-mail to each of the two, and an e-mail to the
    coordinator of each (distinct) municipality the two youths live in. A notice names
    the recipient's own melding and the other professional, never the other child's
    melding_ref or anything else about that child."""
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
                    "counterpart": other.as_professional().model_dump(),
                }
            )
            notices.append(_notice(event_id, me.melding.partner_id, body))
        emails.append(
            _email(
                event_id,
                f"reporter/{me.melding.id}",
                me.melding.reporter.email,
                FamilyReporter(
                    family_match_id=family_match_id,
                    melding_ref=me.melding.melding_ref,
                    organisation=me.organisation,
                    relation=relation,
                    counterpart=other.as_professional(),
                ),
            )
        )
    seen: set[str] = set()
    for municipality in municipalities:
        if municipality.code in seen:
            continue
        seen.add(municipality.code)
        emails.append(
            _email(
                event_id,
                f"coordinator/{municipality.code}",
                municipality.coordinator_email,
                FamilyCoordinator(
                    family_match_id=family_match_id,
                    municipality=municipality.name,
                    relation=relation,
                    participants=[p.as_professional() for p in pair],
                ),
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
    """The notify messages among `messages` as notify bundles of at most
    ITEMS_PER_MESSAGE events, in the place of the first; the others as they were. One
    broker message per 32 events instead of one per event."""
    events = [m for m in messages if m.message_type == NOTIFY_TYPE]
    out: list[OutboundMessage] = []
    for message in messages:
        if message.message_type != NOTIFY_TYPE:
            out.append(message)
        elif message is events[0]:
            out.extend(_notify_bundle(chunk) for chunk in chunked(events))
    return out


def _notify_bundle(events: Sequence[OutboundMessage]) -> OutboundMessage:
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
