"""regie.assign (contract §9): may a municipality's match coordinator give the lead of
a match to a partner? The rule, free of I/O.

The checks go from the match to the partner, and the first that fails is the answer:
no live match with that id (`unknown_match`), a youth living in another municipality
than the coordinator's (`not_authorized`), a partner without an active melding in the
match, or one that retired or is not in the region config (`not_active`). A partner
that already has the lead keeps it: accepted, and nobody is told again (as for a
`regie.claim` by the lead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.portal import NOT_THE_COORDINATOR
from shared.index.domain import StoredMelding

UNKNOWN_MATCH = ErrorItem(
    loc="match_id", code=ErrorCode.UNKNOWN_MATCH, msg="no live match has this match_id"
)
NOT_IN_MATCH = ErrorItem(
    loc="partner",
    code=ErrorCode.NOT_ACTIVE,
    msg="this partner has no active melding in the match",
)


@dataclass(frozen=True)
class LiveMatch:
    """A live match group as the decision needs it."""

    municipality: str  # where the youth lives
    members: Sequence[StoredMelding]  # its active meldingen
    lead_melding_id: int | None


@dataclass(frozen=True)
class NewLead:
    """The lead goes to this melding; `previous` is the lead's melding before, if any."""

    melding: StoredMelding
    previous: StoredMelding | None


@dataclass(frozen=True)
class LeadStays:
    """The partner already has the lead: nothing changes."""


def decide_assignment(
    match: LiveMatch | None,
    *,
    coordinator: str,
    partner: str,
    partner_takes_part: bool,
) -> NewLead | LeadStays | ErrorItem:
    """What a coordinator's regie.assign does; an ErrorItem is the refusal."""
    if match is None:
        return UNKNOWN_MATCH
    if match.municipality != coordinator:
        return NOT_THE_COORDINATOR
    chosen = next((m for m in match.members if m.partner_id == partner), None)
    if chosen is None or not partner_takes_part:
        return NOT_IN_MATCH
    if chosen.id == match.lead_melding_id:
        return LeadStays()
    previous = next((m for m in match.members if m.id == match.lead_melding_id), None)
    return NewLead(chosen, previous)
