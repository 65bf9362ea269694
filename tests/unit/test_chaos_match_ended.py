"""The chaos run's model of `match.ended` (contract §11), and its verdict on what
partners received: checked without a broker or database."""

from __future__ import annotations

from datetime import UTC, date, datetime

from chaos.model import NoticeKey, YouthModel
from chaos.partner import Got, Partner
from chaos.plans import YouthPlan
from chaos.verify import NOT_NOTICES, NOTICE_TYPES, Report, check_notices
from chaos.workload import YouthResult
from shared.contract.outbound import OUTBOUND_TYPES

LABEL = "Y000001"


def ref(partner: str) -> str:
    return f"{LABEL}-{partner}"


def youth(*partners: str) -> YouthModel:
    model = YouthModel(LABEL, "111222333", date(2015, 1, 1), "0363")
    model.register_together((p, ref(p)) for p in partners)
    return model


def ended(model: YouthModel) -> list[NoticeKey]:
    return [k for k in model.notices if k.kind == "match.ended"]


def kinds_after(model: YouthModel, before: int) -> list[tuple[str, str]]:
    return [(k.kind, k.partner) for k in model.notices[before:]]


def test_a_withdraw_leaving_one_active_melding_tells_its_owner_once() -> None:
    model = youth("school", "jgz")
    before = len(model.notices)
    assert model.withdraw("school", ref("school"), "unjustified") == "accepted"
    assert kinds_after(model, before) == [("match.ended", "jgz")]
    assert ended(model) == [NoticeKey("match.ended", "jgz", ref("jgz"), "")]
    assert not model.group_open


def test_the_leads_melding_ending_the_match_gives_match_ended_not_regie_notice() -> None:
    model = youth("school", "jgz")
    model.set_lead("school")
    before = len(model.notices)
    model.withdraw("school", ref("school"), "risk_ended")
    assert kinds_after(model, before) == [("match.ended", "jgz")]
    assert model.lead is None


def test_a_match_that_lives_on_tells_nobody_it_ended() -> None:
    model = youth("school", "jgz", "huisarts")
    model.set_lead("school")
    before = len(model.notices)
    model.withdraw("school", ref("school"), "unjustified")
    assert sorted(kinds_after(model, before)) == [
        ("regie.notice", "huisarts"),
        ("regie.notice", "jgz"),
    ]
    assert model.group_open and ended(model) == []
    # The next withdraw ends it: only the one left hears it.
    model.withdraw("jgz", ref("jgz"), "risk_ended")
    assert ended(model) == [NoticeKey("match.ended", "huisarts", ref("huisarts"), "")]


def test_a_melding_without_a_match_ends_without_match_ended() -> None:
    model = youth("school")
    model.withdraw("school", ref("school"), "risk_ended")
    assert ended(model) == []
    # A withdraw again is refused and changes nothing.
    assert model.withdraw("school", ref("school"), "risk_ended") == "rejected:not_active"
    assert ended(model) == []


def test_expiry_tells_the_owner_melding_ended_and_the_other_match_ended() -> None:
    model = youth("school", "jgz")
    before = len(model.notices)
    model.end_by_system("school", "expired")
    assert model.notices[before:] == [
        NoticeKey("melding.ended", "school", ref("school"), "expired"),
        NoticeKey("match.ended", "jgz", ref("jgz"), ""),
    ]


def test_everything_ending_at_once_leaves_nobody_to_tell_match_ended() -> None:
    for end in ("age_limit", "deceased"):
        model = youth("school", "jgz")
        before = len(model.notices)
        if end == "deceased":
            assert model.died() == "accepted"
        else:
            model.end_by_system("school", "age_limit")
        assert ended(model) == []
        assert ("melding.ended", "school") in kinds_after(model, before)
        assert not model.group_open


def test_the_run_story_withdraw_late_join_death_ends_one_match_once() -> None:
    """The longest story the run plays: the match ends at the withdraw, a late partner
    starts a new one, death purges it all (no second match.ended)."""
    model = youth("school", "jgz")
    model.withdraw("school", ref("school"), "unjustified")
    assert model.register_late("huisarts", ref("huisarts")) == "accepted"
    assert model.group_open
    model.died()
    assert ended(model) == [NoticeKey("match.ended", "jgz", ref("jgz"), "")]


def test_a_second_match_ending_around_one_melding_is_refused() -> None:
    model = youth("school", "jgz")
    model.withdraw("school", ref("school"), "unjustified")
    model.register_late("huisarts", ref("huisarts"))
    try:
        model.withdraw("huisarts", ref("huisarts"), "unjustified")
    except NotImplementedError:
        return
    raise AssertionError("a second match.ended for one melding must not be predicted")


# --- the verdict ------------------------------------------------------------------


def test_every_outbound_type_is_a_notice_of_the_model_or_checked_apart() -> None:
    """A new notice type the index sends must reach the model before a run can pass."""
    assert set(NOTICE_TYPES) | set(NOT_NOTICES) == set(OUTBOUND_TYPES)
    assert not set(NOTICE_TYPES) & set(NOT_NOTICES)


def match_ended(partner: str, message_id: str) -> Got:
    body = {"type": "match.ended", "match_id": "m-1", "melding_ref": ref(partner)}
    return Got(message_id, "match.ended", body, None, False, 0.0)


def verdict(model: YouthModel, received: dict[str, list[Got]]) -> Report:
    plan = YouthPlan(
        1,
        "story",
        "111222333",
        None,
        None,
        date(2015, 1, 1),
        "0363",
        ["school", "jgz"],
        {p: datetime(2026, 12, 1, tzinfo=UTC) for p in ("school", "jgz")},
    )
    assert plan.label == LABEL
    partners = []
    for partner_id, gots in received.items():
        partner = Partner(partner_id, partner_id, "amqp://unused")
        partner.received.extend(gots)
        partners.append(partner)
    # Only the match.ended part of the model is under test here.
    model.notices = ended(model)
    report = Report()
    check_notices(report, partners, [YouthResult(plan, model)])
    return report


def failed(report: Report) -> set[str]:
    return {c.name for c in report.checks if not c.ok}


def withdrawn() -> YouthModel:
    model = youth("school", "jgz")
    model.withdraw("school", ref("school"), "unjustified")
    return model


def test_the_verdict_passes_one_match_ended_where_the_model_expects_it() -> None:
    report = verdict(withdrawn(), {"jgz": [match_ended("jgz", "n-1")], "school": []})
    assert failed(report) == set()
    assert report.figures["match_ended_expected"] == 1
    assert report.figures["match_ended_delivered"] == 1
    assert report.figures["duplicate_effects"] == 0


def test_the_verdict_fails_a_missing_match_ended() -> None:
    report = verdict(withdrawn(), {"jgz": [], "school": []})
    assert failed(report) == {"every expected notice delivered"}


def test_the_verdict_fails_match_ended_to_the_partner_that_withdrew() -> None:
    report = verdict(
        withdrawn(), {"jgz": [match_ended("jgz", "n-1")], "school": [match_ended("school", "n-2")]}
    )
    assert failed(report) == {"no unexpected notice"}


def test_the_verdict_fails_match_ended_sent_twice_as_two_messages() -> None:
    received = {"jgz": [match_ended("jgz", "n-1"), match_ended("jgz", "n-2")], "school": []}
    report = verdict(withdrawn(), received)
    assert failed(report) == {"duplicate effects 0 (no effect twice under different message_ids)"}
    assert report.figures["duplicate_effects"] == 1


def test_a_redelivered_copy_of_one_match_ended_is_no_second_effect() -> None:
    copy = match_ended("jgz", "n-1")
    report = verdict(withdrawn(), {"jgz": [copy, copy], "school": []})
    assert failed(report) == set()
    assert report.figures["duplicate_deliveries"] == 1
