"""What each e-mail template is given: one model per template.

The matcher and the retention sweep build them; the notifier's templates read them by
attribute. Each model carries its template's name as `template`, the tag of the
`EmailData` union. On the wire the name stands beside the data in the e-mail job
(`{"template": ..., "data": {...}}`, see `shared.envelopes.EmailJob`), not in it:
the data's keys are exactly those jobs have always had, so jobs queued by an older
version still render.

Professionals are named by organisation, sector and reporter; a youth never (no BSN,
surname or birth date), and a melding only by its own partner's reference.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contract.outbound import FamilyRelation
from shared.dates import InformTarget


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reporter(_Data):
    """How to reach the professional who reported a melding."""

    name: str
    email: str
    phone: str | None


class Professional(_Data):
    """An organisation involved, as the other side of a family match sees it (no
    melding reference: it would point to the other child)."""

    partner: str
    organisation: str
    sector: str
    reporter: Reporter
    registered_at: datetime


class Counterpart(Professional):
    """Another organisation in a match, as a reporter sees it."""

    archived: bool


class Member(Counterpart):
    """An organisation in a match as its coordinator sees it: with its own reference."""

    melding_ref: str


class Lead(_Data):
    """The organisation that has the lead in a match."""

    partner: str
    organisation: str
    reporter: Reporter


class _Template(_Data):
    # The union's tag; not part of the data on the wire (the job carries it).
    template: str = Field(exclude=True)


class MatchReporter(_Template):
    template: Literal["match_reporter"] = Field("match_reporter", exclude=True)
    match_id: uuid.UUID
    melding_ref: str
    organisation: str
    own_archived: bool
    counterparts: list[Counterpart]
    lead: Lead | None
    lead_is_yours: bool


class MatchCoordinator(_Template):
    template: Literal["match_coordinator"] = Field("match_coordinator", exclude=True)
    match_id: uuid.UUID
    municipality: str
    participants: list[Member]
    lead: Lead | None


class LeadCoordinator(_Template):
    template: Literal["lead_coordinator"] = Field("lead_coordinator", exclude=True)
    match_id: uuid.UUID
    municipality: str
    lead: Lead
    participants: list[Member]


class RegieEscalation(_Template):
    template: Literal["regie_escalation"] = Field("regie_escalation", exclude=True)
    match_id: uuid.UUID
    municipality: str
    lead: None = None  # an escalated match has no lead
    participants: list[Member]


class LeadAssigned(_Template):
    template: Literal["lead_assigned"] = Field("lead_assigned", exclude=True)
    match_id: uuid.UUID
    melding_ref: str
    organisation: str
    municipality: str
    counterparts: list[Counterpart]


class YouthMovedCoordinator(_Template):
    template: Literal["youth_moved_coordinator"] = Field("youth_moved_coordinator", exclude=True)
    municipality: str
    participants: list[Member]


class InformReminder(_Template):
    template: Literal["inform_reminder"] = Field("inform_reminder", exclude=True)
    melding_ref: str
    inform: list[InformTarget]


class FamilyReporter(_Template):
    template: Literal["family_reporter"] = Field("family_reporter", exclude=True)
    family_match_id: uuid.UUID
    melding_ref: str
    organisation: str
    relation: FamilyRelation
    counterpart: Professional


class FamilyCoordinator(_Template):
    template: Literal["family_coordinator"] = Field("family_coordinator", exclude=True)
    family_match_id: uuid.UUID
    municipality: str
    relation: FamilyRelation
    participants: list[Professional]


EmailTemplate = Literal[
    "match_reporter",
    "match_coordinator",
    "lead_coordinator",
    "lead_assigned",
    "regie_escalation",
    "youth_moved_coordinator",
    "inform_reminder",
    "family_reporter",
    "family_coordinator",
]

EmailData = Annotated[
    MatchReporter
    | MatchCoordinator
    | LeadCoordinator
    | RegieEscalation
    | LeadAssigned
    | YouthMovedCoordinator
    | InformReminder
    | FamilyReporter
    | FamilyCoordinator,
    Field(discriminator="template"),
]
