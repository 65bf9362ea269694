"""The match rules without I/O: who matches whom, who gets the lead, and what follows
for a group when meldingen leave it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.index.domain import (
    AlreadyRegistered,
    Contact,
    GroupEnds,
    LeadLeft,
    MemberSector,
    Registered,
    StoredMelding,
    choose_lead,
    decide_after_leaving,
    decide_registration,
)

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def melding(
    id: int,
    partner: str,
    *,
    active: bool = True,
    minutes: int = 0,
    signalled: bool = False,
) -> StoredMelding:
    return StoredMelding(
        id=id,
        partner_id=partner,
        melding_ref=f"{partner}-{id}",
        active=active,
        registered_at=T0 + timedelta(minutes=minutes),
        reporter=Contact(f"Reporter {id}", f"r{id}@{partner}.example", None),
        archive_signalled=signalled,
    )


def registered(partner: str, existing: list[StoredMelding]) -> Registered:
    outcome = decide_registration(partner, existing)
    assert isinstance(outcome, Registered)
    return outcome


def test_first_melding_on_a_youth_is_no_match() -> None:
    outcome = registered("school", [])
    assert not outcome.is_match
    assert not outcome.forms_live_group
    assert outcome.counterparts == ()
    assert outcome.archived_used == ()


def test_an_active_melding_of_the_same_partner_is_already_registered_naming_its_ref() -> None:
    existing = [melding(1, "jgz"), melding(2, "school", minutes=5)]
    assert decide_registration("school", existing) == AlreadyRegistered("school-2")


def test_an_archived_melding_of_the_same_partner_is_no_obstacle_and_no_match() -> None:
    outcome = registered("school", [melding(1, "school", active=False)])
    assert not outcome.is_match
    # The partner's own archive is not "used": it may still signal to another partner.
    assert outcome.archived_used == ()


def test_new_partner_is_matched_with_every_active_melding_of_another_partner() -> None:
    existing = [melding(3, "jgz", minutes=9), melding(1, "school"), melding(2, "huisarts")]
    outcome = registered("jeugdteam", existing)
    assert outcome.is_match and outcome.forms_live_group
    # Earliest first: the order the counterparts are listed in.
    assert [m.id for m in outcome.counterparts] == [1, 2, 3]
    assert outcome.archived_used == ()


def test_an_unsignalled_archived_melding_matches_once_and_is_used_up() -> None:
    archived = melding(1, "school", active=False)
    outcome = registered("jgz", [archived])
    assert outcome.counterparts == (archived,)
    assert outcome.is_match
    assert not outcome.forms_live_group  # no second active melding: no live group
    assert outcome.archived_used == (1,)

    signalled = melding(1, "school", active=False, signalled=True)
    later = registered("huisarts", [signalled])
    assert not later.is_match
    assert later.archived_used == ()


def test_an_organisation_is_named_once_by_its_active_melding_not_its_archive() -> None:
    old = melding(1, "school", active=False)
    current = melding(2, "school", minutes=10)
    outcome = registered("jgz", [old, current])
    assert outcome.counterparts == (current,)
    assert outcome.archived_used == (1,)  # the old archive's one signal is spent too


def test_one_archived_counterpart_per_organisation_the_earliest() -> None:
    older = melding(1, "school", active=False)
    newer = melding(2, "school", active=False, minutes=30)
    outcome = registered("jgz", [newer, older])
    assert outcome.counterparts == (older,)
    assert sorted(outcome.archived_used) == [1, 2]


def test_active_and_archived_counterparts_together() -> None:
    active = melding(5, "huisarts", minutes=60)
    archived = melding(1, "school", active=False)
    outcome = registered("jgz", [archived, active])
    assert outcome.counterparts == (active, archived)
    assert outcome.forms_live_group


def member(id: int, sector: str, minutes: int = 0) -> MemberSector:
    return MemberSector(id, sector, T0 + timedelta(minutes=minutes))


def test_without_a_priority_list_nobody_is_assigned() -> None:
    members = [member(1, "jeugdhulp"), member(2, "jgz")]
    assert choose_lead(None, members) is None
    assert choose_lead([], members) is None


def test_lead_is_the_earliest_melding_of_the_first_sector_present() -> None:
    members = [
        member(1, "onderwijs"),
        member(2, "jgz", minutes=20),
        member(3, "jgz", minutes=10),
        member(4, "zorg", minutes=1),
    ]
    assert choose_lead(["jeugdhulp", "jgz"], members) == 3
    assert choose_lead(["zorg", "jgz"], members) == 4
    members.append(member(5, "jeugdhulp", minutes=99))
    assert choose_lead(["jeugdhulp", "jgz"], members) == 5


def test_no_sector_of_the_list_present_means_no_lead() -> None:
    assert choose_lead(["jeugdhulp"], [member(1, "onderwijs"), member(2, "zorg")]) is None


def test_equal_times_are_broken_by_melding_id() -> None:
    assert choose_lead(["jgz"], [member(9, "jgz"), member(4, "jgz")]) == 4


# --- meldingen leaving a group ------------------------------------------------------


def test_a_group_left_with_one_active_melding_ends_and_names_it() -> None:
    outcome = decide_after_leaving(
        [member(2, "jgz")], left=[1], lead_melding_id=None, priority=None
    )
    assert outcome == GroupEnds(remaining=(2,))


def test_a_group_ends_also_when_the_lead_left_and_one_remains() -> None:
    # The one left is told the match is over, not that the lead was cleared.
    outcome = decide_after_leaving(
        [member(2, "jeugdhulp")], left=[1], lead_melding_id=1, priority=["jeugdhulp"]
    )
    assert outcome == GroupEnds(remaining=(2,))


def test_a_group_left_with_nothing_active_ends_with_nobody_to_tell() -> None:
    outcome = decide_after_leaving([], left=[1, 2], lead_melding_id=1, priority=None)
    assert outcome == GroupEnds(remaining=())


def test_a_living_group_without_its_lead_gets_a_new_one_by_priority() -> None:
    remaining = [member(2, "onderwijs"), member(3, "jgz", minutes=5)]
    assert decide_after_leaving(
        remaining, left=[1], lead_melding_id=1, priority=["jgz"]
    ) == LeadLeft(new_lead=3)
    assert decide_after_leaving(remaining, left=[1], lead_melding_id=1, priority=None) == LeadLeft(
        new_lead=None
    )


def test_a_living_group_whose_lead_stays_is_unchanged() -> None:
    remaining = [member(2, "onderwijs"), member(3, "jgz")]
    assert decide_after_leaving(remaining, left=[1], lead_melding_id=3, priority=["jgz"]) is None
    assert decide_after_leaving(remaining, left=[1], lead_melding_id=None, priority=None) is None
