"""The rule of regie.assign (shared/index/assignment.py): which check refuses first,
and what an accepted assignment changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contract.errors import ErrorCode, ErrorItem
from shared.index.assignment import LeadStays, LiveMatch, NewLead, decide_assignment
from shared.index.domain import Contact, StoredMelding


def melding(id: int, partner: str) -> StoredMelding:
    return StoredMelding(
        id=id,
        partner_id=partner,
        melding_ref=f"R-{id}",
        active=True,
        registered_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        reporter=Contact(f"Contact {partner}", f"contact@{partner}.example", None),
    )


SCHOOL, TEAM, GP = melding(1, "school"), melding(2, "jeugdteam"), melding(3, "huisarts")


def match(lead: StoredMelding | None = None, municipality: str = "0363") -> LiveMatch:
    return LiveMatch(municipality, [SCHOOL, TEAM, GP], lead.id if lead else None)


def decide(
    live: LiveMatch | None, partner: str, *, coordinator: str = "0363", takes_part: bool = True
) -> NewLead | LeadStays | ErrorItem:
    return decide_assignment(
        live, coordinator=coordinator, partner=partner, partner_takes_part=takes_part
    )


def refusal(outcome: object) -> tuple[ErrorCode, str]:
    assert isinstance(outcome, ErrorItem), outcome
    return outcome.code, outcome.loc


def test_the_lead_goes_to_the_partner_when_nobody_has_it() -> None:
    assert decide(match(), "jeugdteam") == NewLead(TEAM, previous=None)


def test_the_lead_moves_when_another_has_it() -> None:
    assert decide(match(lead=SCHOOL), "huisarts") == NewLead(GP, previous=SCHOOL)


def test_the_lead_stays_with_the_partner_that_has_it() -> None:
    assert decide(match(lead=TEAM), "jeugdteam") == LeadStays()


def test_no_live_match_is_unknown_match_whatever_else_is_wrong() -> None:
    assert refusal(decide(None, "nobody", coordinator="0599", takes_part=False)) == (
        ErrorCode.UNKNOWN_MATCH,
        "match_id",
    )


def test_the_coordinator_of_another_municipality_is_refused_before_the_partner() -> None:
    for partner in ("jeugdteam", "nobody"):
        assert refusal(decide(match(), partner, coordinator="0599")) == (
            ErrorCode.NOT_AUTHORIZED,
            "x-vi-coordinator",
        )


@pytest.mark.parametrize(
    ("partner", "takes_part"),
    [("jgz", True), ("nobody", False), ("jeugdteam", False), ("", True)],
    ids=["not in the match", "unknown", "retired", "empty"],
)
def test_a_partner_without_an_active_melding_in_the_match(partner: str, takes_part: bool) -> None:
    assert refusal(decide(match(lead=SCHOOL), partner, takes_part=takes_part)) == (
        ErrorCode.NOT_ACTIVE,
        "partner",
    )
