"""What the domain decided that someone must be told: who is told, what ended, who
leads. Plain values, free of I/O; `shared.announce` turns them into notices, e-mails
and the messages that carry them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from shared.contract.outbound import EndReason
from shared.dates import InformTarget
from shared.index.domain import StoredMelding
from shared.index.family import Relation


@dataclass(frozen=True)
class Matched:
    """A new melding matched: everyone in the match hears of the others, and the
    coordinator of where the youth lives of all of them."""

    match_id: uuid.UUID
    newcomer: StoredMelding
    counterparts: Sequence[StoredMelding]
    lead: StoredMelding | None
    municipality: str


@dataclass(frozen=True)
class LeadChanged:
    """Who leads a match now (nobody: `lead_melding_id` None, or `escalated` when the
    deadline passed without one). Its active members hear it, and the coordinator; a
    lead the coordinator `assigned` also by e-mail."""

    match_id: uuid.UUID
    members: Sequence[StoredMelding]  # its active meldingen
    lead_melding_id: int | None
    municipality: str
    escalated: bool = False
    assigned: bool = False


@dataclass(frozen=True)
class MatchOver:
    """Fewer than two active meldingen remain: the owners of those still active in
    the group hear that the match is over."""

    match_id: uuid.UUID
    remaining: Sequence[StoredMelding]


@dataclass(frozen=True)
class Ended:
    """A melding ended by another hand than its owner's (expiry, age limit, death,
    erasure): the owner hears why."""

    melding: StoredMelding
    reason: EndReason


@dataclass(frozen=True)
class Moved:
    """The youth moved: the owners of the active meldingen hear where to, and the
    coordinator of the new municipality."""

    active: Sequence[StoredMelding]
    municipality: str


@dataclass(frozen=True)
class InformDue:
    """Nothing recorded on informing the family in time: the reporter is reminded."""

    partner_id: str
    melding_ref: str
    reporter_email: str
    inform: list[InformTarget]


@dataclass(frozen=True)
class FamilyMatched:
    """Two meldingen on children of one family: both reporters hear of each other,
    and the coordinator of each municipality the two live in."""

    family_match_id: uuid.UUID
    relation: Relation
    pair: tuple[StoredMelding, StoredMelding]
    municipalities: Sequence[str]


Decision = Matched | LeadChanged | MatchOver | Ended | Moved | InformDue | FamilyMatched
