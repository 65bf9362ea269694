"""Decisions made known: what `shared.announce` sends for each decision, without I/O."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from shared.amqp.topology import INTERNAL_EXCHANGE, NOTIFIER_KEY
from shared.announce import announce
from shared.envelopes import NOTIFY_TYPE, NotifyEvent
from shared.index.decisions import Ended, InformDue, LeadChanged, MatchOver, Moved
from shared.index.domain import Contact, StoredMelding
from shared.region.model import RegionConfig, parse_region
from tests.support import region_document

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
MATCH_ID = uuid.UUID("5c0f3c52-0d7e-4a8b-9a53-7c6a1f0e2b11")


def _region(*retired: str) -> RegionConfig:
    document = region_document("a")
    for partner in document["partner"]:
        partner["retired"] = partner["id"] in retired
    return parse_region(document)


def _melding(id: int, partner: str) -> StoredMelding:
    return StoredMelding(
        id, partner, f"R-{id}", True, T0, Contact("A. Jansen", f"r{id}@x.example", None)
    )


def _events(region: RegionConfig, *decisions: object) -> list[NotifyEvent]:
    messages = announce(region, decisions)  # type: ignore[arg-type]
    assert all(
        (m.exchange, m.routing_key, m.message_type)
        == (INTERNAL_EXCHANGE, NOTIFIER_KEY, NOTIFY_TYPE)
        for m in messages
    )
    return [NotifyEvent.model_validate(json.loads(m.body)) for m in messages]


def test_each_decision_is_one_event_in_order() -> None:
    region = _region()
    school, team = _melding(1, "school"), _melding(2, "jeugdteam")
    events = _events(
        region,
        Ended(school, "expired"),
        MatchOver(MATCH_ID, [team]),
        InformDue("school", "R-1", "r1@x.example", ["parents"]),
    )
    assert [[n.message_type for n in e.notices] for e in events] == [
        ["melding.ended"],
        ["match.ended"],
        ["inform.reminder"],
    ]
    assert [n.partner_id for e in events for n in e.notices] == ["school", "jeugdteam", "school"]
    assert [j.template for j in events[2].emails] == ["inform_reminder"]


def test_nobody_to_tell_sends_nothing() -> None:
    # A match over for a retired partner only, and a move with no active melding.
    region = _region("huisarts")
    assert _events(region, MatchOver(MATCH_ID, [_melding(1, "huisarts")])) == []
    assert _events(region, Moved([], "0363")) == []


def test_a_lead_is_told_to_the_members_and_the_coordinator_of_a_known_municipality() -> None:
    region = _region()
    members = [_melding(1, "school"), _melding(2, "jeugdteam")]
    [known] = _events(region, LeadChanged(MATCH_ID, members, 2, "0363", assigned=True))
    assert [n.partner_id for n in known.notices] == ["school", "jeugdteam"]
    assert [(j.template, j.to) for j in known.emails] == [
        ("lead_coordinator", "regie@amsterdam.example"),
        ("lead_assigned", "r2@x.example"),
    ]
    # A municipality the region no longer names: the members hear it, nobody else.
    [unknown] = _events(region, LeadChanged(MATCH_ID, members, 2, "9999", assigned=True))
    assert len(unknown.notices) == 2 and unknown.emails == []
    [escalated] = _events(region, LeadChanged(MATCH_ID, members, None, "0363", escalated=True))
    assert [j.template for j in escalated.emails] == ["regie_escalation"]
    assert all(n.body["escalated"] is True for n in escalated.notices)
