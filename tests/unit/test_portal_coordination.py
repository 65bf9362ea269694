"""The coordinator's workbench without I/O: the order of the matches, days without a
lead, follow-up due, participation figures with small counts suppressed, the CSV, the
chart, and the Dutch answers to a refused assignment."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

from services.portal.chart import monthly_svg
from services.portal.coordination import Match, Member, order
from services.portal.messages import coordinator_dutch
from services.portal.participation import Month, Participation, months, per_sector, to_csv
from services.portal.settings import PortalSettings
from shared.stats_report import Cell

FORMED = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)


def _member(partner: str, *, active: bool = True) -> Member:
    return Member(1, partner, partner.title(), "jgz", active, "R. Eporter", "r@x.example", None)


def _match(
    *,
    formed: datetime = FORMED,
    escalated: bool = False,
    ended: datetime | None = None,
    lead: str | None = None,
    followed_up: datetime | None = None,
) -> Match:
    return Match(
        match_id=uuid.uuid4(),
        municipality="0363",
        formed_at=formed,
        ended_at=ended,
        lead_partner=lead,
        lead_needed_since=None,
        escalated=escalated,
        moved_in_at=None,
        followed_up_at=followed_up,
        members=(_member("a"), _member("b", active=False)),
    )


def test_escalated_matches_come_first_then_open_ones_oldest_first_then_ended_latest_first() -> None:
    old = _match(formed=FORMED - timedelta(days=30))
    young = _match()
    escalated = _match(formed=FORMED + timedelta(days=1), escalated=True)
    ended_early = _match(ended=FORMED + timedelta(days=2))
    ended_late = _match(ended=FORMED + timedelta(days=5))
    got = order([ended_early, young, escalated, ended_late, old])
    assert got == [escalated, old, young, ended_late, ended_early]


def test_days_without_a_lead_count_from_the_formation_until_a_lead_is_set() -> None:
    today = date(2026, 11, 20)
    assert _match().days_without_lead(today) == 18
    assert _match(lead="a").days_without_lead(today) is None
    assert _match(ended=FORMED).days_without_lead(today) is None


def test_a_match_needs_follow_up_n_days_after_it_formed_until_it_is_recorded() -> None:
    assert not _match().needs_followup(date(2026, 11, 15), 14)
    assert _match().needs_followup(date(2026, 11, 16), 14)
    assert not _match(followed_up=FORMED).needs_followup(date(2026, 11, 30), 14)
    assert not _match(ended=FORMED).needs_followup(date(2026, 11, 30), 14)


def test_the_lead_and_the_members_that_can_take_it() -> None:
    match = _match(lead="a")
    assert match.lead is not None and match.lead.partner_id == "a"
    assert [m.partner_id for m in match.active_members] == ["a"]


def _p(org: str, sector: str, meldingen: int, matched: int, informed: int) -> Participation:
    return Participation(org, sector, meldingen, matched, informed, FORMED.date())


def test_small_counts_are_suppressed_and_a_share_needs_five_on_both_sides() -> None:
    assert _p("X", "jgz", 12, 3, 6).shown() == {
        "meldingen": "12",
        "matched": "<5",
        "informed_share": "50%",
    }
    assert _p("X", "jgz", 12, 6, 4).shown()["informed_share"] == "-"


def test_sectors_add_up_their_organisations_before_suppression() -> None:
    rows = per_sector([_p("A", "jgz", 3, 1, 2), _p("B", "jgz", 3, 4, 3), _p("C", "zorg", 1, 0, 0)])
    assert [(r.sector, r.meldingen, r.matched, r.informed) for r in rows] == [
        ("jgz", 6, 5, 5),
        ("zorg", 1, 0, 0),
    ]
    assert rows[0].shown() == {"meldingen": "6", "matched": "5", "informed_share": "83%"}


def test_the_csv_holds_only_suppressed_figures_and_no_formula() -> None:
    text = to_csv([_p("=cmd()", "jgz", 2, 1, 0), _p("Team", "jeugdhulp", 9, 7, 5)])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["organisatie", "sector", "meldingen"]
    assert rows[1] == ["'=cmd()", "jgz", "<5", "<5", "-", "2026-11-02"]
    assert rows[2] == ["Team", "jeugdhulp", "9", "7", "56%", "2026-11-02"]


def test_months_add_up_the_municipalities_asked_for_and_include_empty_months() -> None:
    def cell(month: date, municipality: str, registered: int, matched: int) -> Cell:
        counts = dict.fromkeys(("registered", "matched", "informed", "deferred", "open"), 0)
        counts.update(registered=registered, matched=matched)
        return Cell(month, "jgz", municipality, counts)

    facts = [
        cell(date(2026, 11, 1), "0363", 7, 2),
        cell(date(2026, 11, 1), "0599", 100, 50),
        cell(date(2026, 1, 1), "0363", 5, 5),
    ]
    got = months(facts, ["0363"], date(2026, 12, 1))
    assert (
        len(got) == 12 and got[0].month == date(2026, 1, 1) and got[-1].month == date(2026, 12, 1)
    )
    assert got[0] == Month(date(2026, 1, 1), 5, 5)
    assert got[-2] == Month(date(2026, 11, 1), 7, 2)
    assert got[-1] == Month(date(2026, 12, 1), 0, 0)


def test_the_chart_is_plain_svg_that_shows_no_small_count() -> None:
    svg = monthly_svg(
        [Month(date(2026, 10, 1), 12, 3), Month(date(2026, 11, 1), 8, 6)], title="Per <maand>"
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script" not in svg and "http://" not in svg.replace('xmlns="http://www.w3.org', "")
    assert "Per &lt;maand&gt;" in svg
    assert ">12<" in svg and ">8<" in svg and ">6<" in svg
    assert ">3<" not in svg and ">&lt;5<" in svg
    assert svg.count("<rect") == 3 + 2  # three bars shown, two legend keys


def test_a_refused_assignment_is_explained_to_the_coordinator_in_dutch() -> None:
    assert "woont niet (meer) in uw gemeente" in coordinator_dutch({"code": "not_authorized"})
    assert "geen actieve melding" in coordinator_dutch({"code": "not_active"})
    assert "bestaat niet (meer)" in coordinator_dutch({"code": "unknown_match"})
    assert "te groot" in coordinator_dutch({"code": "too_large"})  # the general wording


def test_follow_up_days_come_from_the_environment() -> None:
    assert PortalSettings.from_env({}).followup_days == 14
    assert PortalSettings.from_env({"VI_PORTAL_FOLLOWUP_DAYS": "21"}).followup_days == 21
