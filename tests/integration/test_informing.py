"""Informing the family (issue 10): whom to inform on the receipt, melding.informed
(confirmation or deferral), and the reminder the sweep sends once when neither came."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient
from tests.conftest import System, apply_region
from tests.integration.lifecycle_support import (
    Box,
    at,
    boxes,
    day,
    deferred,
    informed,
    mails_to,
    melding_row,
    register,
    start_lifecycle,
    withdraw,
)
from tests.support import RegionUnderTest, mails, region_document, valid_bsn

REPORTED = "2026-01-01T10:00:00+01:00"  # an ordinary winter day; due 15 January


async def test_receipt_says_whom_to_inform_by_age_on_reported_at(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    born = "2005-03-10"
    cases = [
        # The day before the 12th birthday, and the day itself.
        ("S-11", "2017-03-09T12:00:00+01:00", ["parents"]),
        ("S-12", "2017-03-10T00:00:00+01:00", ["youth", "parents"]),
        # The 16th birthday by Amsterdam's clock: 22:59 UTC is 23:59 on 9 March,
        # 23:30 UTC is 00:30 on 10 March.
        ("S-15", "2021-03-09T22:59:00+00:00", ["youth", "parents"]),
        ("S-16", "2021-03-09T23:30:00+00:00", ["youth"]),
    ]
    for n, (ref, reported_at, expected) in enumerate(cases):
        body = register(ref, valid_bsn(700 + n), birth_date=born, reported_at=reported_at)
        receipt = await school.accepted(body)
        assert receipt.body["inform"] == expected, ref
        assert list((await melding_row(db, "school", ref))["inform_targets"]) == expected
    # Only an accepted registration carries it.
    rejected = await school.call(
        register("S-11", valid_bsn(710), birth_date=born, reported_at=cases[0][1])
    )
    assert rejected.body["status"] == "rejected" and "inform" not in rejected.body
    other = await school.call(informed("S-11", ["parents"], "2026-01-02"))
    assert other.body["status"] == "accepted" and "inform" not in other.body


async def test_confirmation_and_deferral_are_stored_and_a_later_one_replaces(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(720), reported_at=REPORTED))
    secret = "moeder is opgenomen; informeren na ontslag"

    receipt = await school.accepted(informed("S-1", ["parents", "youth"], "2026-01-05"))
    assert receipt.body["melding_ref"] == "S-1"
    row = await melding_row(db, "school", "S-1")
    assert list(row["informed"]) == ["parents", "youth"]
    assert row["informed_on"] == day("2026-01-05")
    assert row["deferred_reason"] is None

    await school.accepted(deferred("S-1", secret))
    row = await melding_row(db, "school", "S-1")
    assert (row["informed"], row["informed_on"]) == (None, None)
    assert row["deferred_reason"] == secret

    await school.accepted(informed("S-1", ["parents"], "2026-01-20"))
    row = await melding_row(db, "school", "S-1")
    assert list(row["informed"]) == ["parents"] and row["deferred_reason"] is None

    log = await db.fetch(
        "SELECT action, actor, melding_ref, youth_ref, detail FROM audit_log "
        "WHERE action IN ('informed', 'inform_deferred') ORDER BY id"
    )
    assert [r["action"] for r in log] == ["informed", "inform_deferred", "informed"]
    assert {(r["actor"], r["melding_ref"]) for r in log} == {("school", "S-1")}
    assert all(r["youth_ref"] for r in log)
    everything = str([dict(r) for r in await db.fetch("SELECT * FROM audit_log")])
    assert "opgenomen" not in everything and "ontslag" not in everything


async def test_melding_informed_is_validated(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team, brp = box["school"], box["jeugdteam"], box["brp"]
    await school.accepted(register("S-1", valid_bsn(730), reported_at=REPORTED))

    both = {**informed("S-1", ["parents"], "2026-01-05"), "deferred_reason": "later"}
    receipt = await school.call(both)
    assert receipt.body["status"] == "rejected"
    assert [(e["loc"], e["code"]) for e in receipt.body["errors"]] == [
        ("deferred_reason", "schema")
    ]
    assert await school.rejected(informed("S-1", ["parents"], "2999-01-01")) == ["schema"]
    assert await school.rejected(informed("S-1", [], "2026-01-05")) == ["schema"]
    assert await school.rejected(informed("S-1", ["youth", "youth"], "2026-01-05")) == ["schema"]
    assert await school.rejected(informed("S-1", ["grandma"], "2026-01-05")) == ["schema"]
    assert await school.rejected({"type": "melding.informed", "melding_ref": "S-1"}) == ["schema"]
    assert await school.rejected(deferred("S-1", "x" * 501)) == ["schema"]
    assert await school.rejected(informed("S-404", ["parents"], "2026-01-05")) == [
        "unknown_melding"
    ]
    # Only the owner: another partner's ref is simply unknown.
    assert await team.rejected(informed("S-1", ["parents"], "2026-01-05")) == ["unknown_melding"]
    assert await brp.rejected(informed("S-1", ["parents"], "2026-01-05")) == ["not_authorized"]
    row = await melding_row(db, "school", "S-1")
    assert (row["informed"], row["informed_on"], row["deferred_reason"]) == (None, None, None)


async def test_informing_goes_with_the_melding_into_the_archive_and_out(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(740), reported_at=REPORTED))
    await school.accepted(register("S-2", valid_bsn(741), reported_at=REPORTED))
    await school.accepted(deferred("S-1", "reden een"))
    await school.accepted(deferred("S-2", "reden twee"))

    await school.accepted(withdraw("S-1", "risk_ended"))
    row = await melding_row(db, "school", "S-1")
    assert row["state"] == "archived"
    assert (row["informed"], row["informed_on"], row["deferred_reason"]) == (None, None, None)
    assert await school.rejected(informed("S-1", ["parents"], "2026-01-05")) == ["not_active"]
    assert await school.rejected(deferred("S-1", "toch nog")) == ["not_active"]

    await school.accepted(withdraw("S-2", "unjustified"))
    assert not await db.fetchval("SELECT count(*) FROM melding WHERE deferred_reason IS NOT NULL")
    assert await school.rejected(deferred("S-2", "weer")) == ["unknown_melding"]


async def _reminders(box: Box, seconds: float = 0.4) -> list[dict[str, Any]]:
    return [m.body for m in await box.rest(seconds) if m.type == "inform.reminder"]


async def test_reminder_once_when_nothing_was_recorded_in_time(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    # Born 2014-05-01: 11 on the day of the melding, so the parents are informed.
    await school.accepted(register("S-SILENT", valid_bsn(750), reported_at=REPORTED))
    await school.accepted(register("S-TOLD", valid_bsn(751), reported_at=REPORTED))
    await school.accepted(register("S-LATER", valid_bsn(752), reported_at=REPORTED))
    await school.accepted(register("S-ENDED", valid_bsn(753), reported_at=REPORTED))
    await school.accepted(register("S-GONE", valid_bsn(754), reported_at=REPORTED))
    await school.accepted(informed("S-TOLD", ["parents"], "2026-01-03"))
    await school.accepted(deferred("S-LATER", "niet in het belang van de jeugdige"))
    await school.accepted(withdraw("S-ENDED", "risk_ended"))
    await school.accepted(withdraw("S-GONE", "unjustified"))
    assert await school.rest(0.1) == []

    # The day before: 22:59 UTC on 14 January is 23:59 in Amsterdam.
    report = await lc.sweep(at("2026-01-14T22:59:00+00:00"))
    assert "inform_reminded" not in report.counts
    assert await _reminders(school) == []

    # The day of: 23:30 UTC on 14 January is 00:30 on 15 January in Amsterdam.
    report = await lc.sweep(at("2026-01-14T23:30:00+00:00"))
    assert report.counts.get("inform_reminded") == 1
    reminder = await school.take("inform.reminder")
    assert reminder.body == {
        "type": "inform.reminder",
        "melding_ref": "S-SILENT",
        "inform": ["parents"],
    }
    [mail] = await mails_to(test_region, "s-silent@reporter.example", 1)
    assert "S-SILENT" in mail.get_content()
    assert valid_bsn(750) not in mail.get_content() and "2014" not in mail.get_content()
    assert await school.rest() == []

    # Once: later sweeps say nothing more, to anyone.
    report = await lc.sweep(at("2026-01-20T12:00:00+01:00"))
    assert "inform_reminded" not in report.counts
    assert await school.rest() == []
    await asyncio.sleep(0.2)
    assert len([m for m in mails(test_region) if "Herinnering" in str(m["Subject"])]) == 1
    assert (await melding_row(db, "school", "S-SILENT"))["inform_reminded_at"] is not None

    # A confirmation after the reminder is still taken.
    await school.accepted(informed("S-SILENT", ["parents"], "2026-01-21"))
    assert list((await melding_row(db, "school", "S-SILENT"))["informed"]) == ["parents"]


async def test_reminder_deadline_comes_from_the_region_config(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    config = await apply_region(
        test_region, region_document(test_region.user_prefix, inform_deadline_days=3)
    )
    await school.accepted(register("S-1", valid_bsn(760), reported_at=REPORTED))
    report = await lc.sweep(at("2026-01-03T23:59:00+01:00"), region=config)
    assert "inform_reminded" not in report.counts
    report = await lc.sweep(at("2026-01-04T00:00:00+01:00"), region=config)
    assert report.counts.get("inform_reminded") == 1
    assert (await school.take("inform.reminder")).body["melding_ref"] == "S-1"


async def test_reminder_names_youth_and_parents_from_twelve(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(
        register("S-1", valid_bsn(770), birth_date="2012-05-01", reported_at=REPORTED)
    )
    await lc.sweep(at("2026-01-15T09:00:00+01:00"))
    assert (await school.take("inform.reminder")).body["inform"] == ["youth", "parents"]


async def test_reminder_counts_calendar_days_across_the_clock_change(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    # 14 days that hold the 23-hour day of 29 March: due at 00:00 on 3 April, less
    # than 13 x 24 hours after 23:59 on 20 March.
    await school.accepted(register("S-1", valid_bsn(780), reported_at="2026-03-20T23:59:00+01:00"))
    report = await lc.sweep(at("2026-04-02T23:59:00+02:00"))
    assert "inform_reminded" not in report.counts
    report = await lc.sweep(at("2026-04-03T00:00:00+02:00"))
    assert report.counts.get("inform_reminded") == 1
    assert (await school.take("inform.reminder")).body["melding_ref"] == "S-1"
