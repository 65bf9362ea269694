"""Who matches whom, and who must be told: the rules, free of I/O.

A new melding on a youth is a match with every *active* melding of another
organisation, and with every archived melding of another organisation that has not
signalled yet (an archived melding signals once). The new melding's partner hears of
all counterparts; each counterpart hears of the new melding.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str | None


@dataclass(frozen=True)
class StoredMelding:
    id: int
    partner_id: str
    melding_ref: str
    active: bool
    registered_at: datetime
    reporter: Contact
    archive_signalled: bool = False


@dataclass(frozen=True)
class AlreadyRegistered:
    existing_ref: str


@dataclass(frozen=True)
class Registered:
    """The outcome of a new melding. `counterparts` is empty when there is no match."""

    counterparts: tuple[StoredMelding, ...]
    # Archived meldingen that have now used their one signal (including those left out
    # of `counterparts` because their organisation is also actively involved).
    archived_used: tuple[int, ...]

    @property
    def is_match(self) -> bool:
        return bool(self.counterparts)

    @property
    def forms_live_group(self) -> bool:
        """A match group lives while two or more meldingen are active."""
        return any(m.active for m in self.counterparts)


def decide_registration(
    partner_id: str, existing: Sequence[StoredMelding]
) -> AlreadyRegistered | Registered:
    for melding in existing:
        if melding.active and melding.partner_id == partner_id:
            return AlreadyRegistered(melding.melding_ref)
    others = [m for m in existing if m.partner_id != partner_id]
    active = sorted((m for m in others if m.active), key=lambda m: (m.registered_at, m.id))
    unsignalled = [m for m in others if not m.active and not m.archive_signalled]
    active_partners = {m.partner_id for m in active}
    # One counterpart per organisation: an organisation that is actively involved is
    # named by its active melding, not also by an old archived one.
    archived: dict[str, StoredMelding] = {}
    for melding in sorted(unsignalled, key=lambda m: (m.registered_at, m.id)):
        if melding.partner_id not in active_partners:
            archived.setdefault(melding.partner_id, melding)
    return Registered(
        counterparts=(*active, *archived.values()),
        archived_used=tuple(m.id for m in unsignalled),
    )


@dataclass(frozen=True)
class MemberSector:
    melding_id: int
    sector: str
    registered_at: datetime


def choose_lead(priority: Sequence[str] | None, members: Sequence[MemberSector]) -> int | None:
    """With a sector priority list: the earliest melding of the first sector present."""
    if not priority:
        return None
    for sector in priority:
        candidates = [m for m in members if m.sector == sector]
        if candidates:
            return min(candidates, key=lambda m: (m.registered_at, m.melding_id)).melding_id
    return None


@dataclass(frozen=True)
class GroupEnds:
    """Fewer than two active meldingen remain: the group ends, and the owner of each
    melding still active in it is told that the match is over."""

    remaining: tuple[int, ...]


@dataclass(frozen=True)
class LeadLeft:
    """The lead's melding ended in a group that lives on: the lead is cleared and,
    with a sector priority list, given to ``new_lead``."""

    new_lead: int | None


def decide_after_leaving(
    remaining: Sequence[MemberSector],
    *,
    left: Collection[int],
    lead_melding_id: int | None,
    priority: Sequence[str] | None,
) -> GroupEnds | LeadLeft | None:
    """What follows for a match group when the meldingen ``left`` ended and
    ``remaining`` are still active in it; None when nothing changes for the others."""
    if len(remaining) < 2:
        return GroupEnds(tuple(m.melding_id for m in remaining))
    if lead_melding_id is None or lead_melding_id not in left:
        return None
    return LeadLeft(choose_lead(priority, remaining))
