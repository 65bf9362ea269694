"""Outbound messages: what the system publishes to a partner's mailbox.

None of these carries a BSN, a surname or a birth date: a youth is named only by the
recipient's own ``melding_ref``. The one exception is ``person.lookup``, sent only to
a population register, which asks for the family facts of a BSN (contract §8).
Serialise with :func:`dump_json` so that every publisher produces the same bytes for
the same message.
"""

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from shared.contract.errors import ErrorItem
from shared.dates import InformTarget

Sector = Literal[
    "jeugdhulp",
    "jgz",
    "zorg",
    "onderwijs",
    "wmo",
    "werk_inkomen",
    "politie_justitie",
    "gemeente",
]
# The sector shown for an organisation the region config no longer names (a melding
# stored before a partner could only leave the region as `retired`).
UnknownSector = Literal["onbekend"]
UNKNOWN_SECTOR: Final[UnknownSector] = "onbekend"
ReceiptStatus = Literal["accepted", "rejected", "duplicate"]
EndReason = Literal["expired", "age_limit", "deceased", "erased"]


class OutboundBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReporterContact(OutboundBase):
    """How to reach a reporter; ``phone`` is ``null`` when none was given."""

    name: str
    email: str
    phone: str | None = None


class Counterpart(OutboundBase):
    partner: str
    organisation: str
    sector: Sector | UnknownSector
    reporter: ReporterContact
    registered_at: datetime
    archived: bool = False


class LeadInfo(OutboundBase):
    partner: str
    organisation: str
    reporter: ReporterContact


class Receipt(OutboundBase):
    """The answer to one inbound message.

    ``inform`` is present only on an accepted ``melding.register``; otherwise the
    field is left out of the JSON rather than sent as ``null``.
    """

    type: Literal["receipt"] = "receipt"
    in_reply_to: str | None
    status: ReceiptStatus
    melding_ref: str | None = None
    errors: list[ErrorItem] = Field(default_factory=list)
    inform: list[InformTarget] | None = Field(default=None, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _errors_match_status(self) -> "Receipt":
        # Catches wiring mistakes early: a rejection must say why, and only an
        # accepted registration tells whom to inform.
        if (self.status == "rejected") != bool(self.errors):
            raise ValueError("errors must be given exactly when status is rejected")
        if self.inform is not None and self.status != "accepted":
            raise ValueError("inform belongs only on an accepted receipt")
        return self


class MatchNotice(OutboundBase):
    type: Literal["match.notice"] = "match.notice"
    match_id: str
    melding_ref: str
    counterparts: list[Counterpart] = Field(min_length=1)
    lead: LeadInfo | None = None


class RegieNotice(OutboundBase):
    type: Literal["regie.notice"] = "regie.notice"
    match_id: str
    melding_ref: str
    lead: LeadInfo | None
    escalated: bool = False


class MeldingEnded(OutboundBase):
    type: Literal["melding.ended"] = "melding.ended"
    melding_ref: str
    reason: EndReason


class MatchEnded(OutboundBase):
    """The match group ended (fewer than two active meldingen remain); sent to each
    partner whose melding in it is still active."""

    type: Literal["match.ended"] = "match.ended"
    match_id: str
    melding_ref: str


class InformReminder(OutboundBase):
    type: Literal["inform.reminder"] = "inform.reminder"
    melding_ref: str
    inform: list[InformTarget] = Field(min_length=1)


class YouthMoved(OutboundBase):
    type: Literal["youth.moved"] = "youth.moved"
    melding_ref: str
    municipality: str


FamilyRelation = Literal["parent", "address"]


class FamilyCounterpart(OutboundBase):
    """The other professional of a family match: the organisation and reporter only,
    never the other child's melding_ref or anything else that points to that child."""

    partner: str
    organisation: str
    sector: Sector | UnknownSector
    reporter: ReporterContact
    registered_at: datetime


class FamilyNotice(OutboundBase):
    """A professional involved with another child of the same family (contract §8)."""

    type: Literal["family.notice"] = "family.notice"
    family_match_id: str
    melding_ref: str
    relation: FamilyRelation
    counterpart: FamilyCounterpart


class PersonLookup(OutboundBase):
    """To a population register only: the one outbound message that carries a BSN,
    asking for the youth's family facts (answered with person.family)."""

    type: Literal["person.lookup"] = "person.lookup"
    lookup_id: str
    bsn: str


OutboundMessage = Annotated[
    Receipt
    | MatchNotice
    | RegieNotice
    | MeldingEnded
    | MatchEnded
    | InformReminder
    | YouthMoved
    | FamilyNotice
    | PersonLookup,
    Field(discriminator="type"),
]

OUTBOUND_TYPES: Final[dict[str, type[OutboundBase]]] = {
    "receipt": Receipt,
    "match.notice": MatchNotice,
    "regie.notice": RegieNotice,
    "melding.ended": MeldingEnded,
    "match.ended": MatchEnded,
    "inform.reminder": InformReminder,
    "youth.moved": YouthMoved,
    "family.notice": FamilyNotice,
    "person.lookup": PersonLookup,
}

_OUTBOUND_ADAPTER: Final[TypeAdapter[OutboundMessage]] = TypeAdapter(OutboundMessage)


def dump_json(model: BaseModel) -> bytes:
    """Compact UTF-8 JSON; ``null`` stays ``null`` except for fields marked to be left out."""
    return model.model_dump_json().encode("utf-8")


def load_outbound(body: bytes) -> OutboundMessage:
    """Parse an outbound message body (for tests and partner simulators)."""
    return _OUTBOUND_ADAPTER.validate_json(body)
