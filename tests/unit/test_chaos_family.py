"""The chaos run's model of the family match: what the run expects, checked without
a broker or database."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

from chaos.model import NoticeKey, YouthModel, family_match
from chaos.plans import make_plans
from chaos.workload import YouthResult, expect_family_matches


def child(label: str, *meldingen: tuple[str, str]) -> YouthModel:
    model = YouthModel(label, "111222333", date(2015, 1, 1), "0363")
    model.register_together(meldingen)
    return model


def test_siblings_of_different_partners_are_told_once_each() -> None:
    anna, bram = child("A", ("school", "A-school")), child("B", ("jgz", "B-jgz"))
    family_match(anna, bram)
    assert anna.notices == [NoticeKey("family.notice", "school", "A-school", "jgz/parent")]
    assert bram.notices == [NoticeKey("family.notice", "jgz", "B-jgz", "school/parent")]


def test_one_partner_on_both_children_and_ended_meldingen_are_not_told() -> None:
    anna, bram = child("A", ("school", "A-school")), child("B", ("school", "B-school"))
    family_match(anna, bram)
    assert anna.notices == bram.notices == []
    carl = child("C", ("jgz", "C-jgz"))
    carl.withdraw("jgz", "C-jgz", "risk_ended")
    before = list(carl.notices)
    family_match(anna, carl)
    assert carl.notices == before and anna.notices == []


def test_an_incomplete_story_makes_its_siblings_notice_optional() -> None:
    plans = make_plans(300, random.Random(3), datetime(2026, 12, 1, tzinfo=UTC))
    assert plans.families and all(a.parent_bsn == b.parent_bsn for a, b in plans.families)
    a, b = plans.families[0]
    first = YouthResult(a, child(a.label, (a.registrants[0], a.ref(a.registrants[0]))))
    second = YouthResult(b, child(b.label, (b.registrants[0], b.ref(b.registrants[0]))))
    second.complete = False
    expect_family_matches([first, second], plans.families)
    assert [k.kind for k in first.model.notices] == []
    assert [k.kind for k in first.optional] == ["family.notice"]
