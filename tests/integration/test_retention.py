"""The retention sweep with an injected clock: 2-year expiry, 5-year archive, the 23rd
birthday, batches, idempotence, two sweeps at once, the CLI, the scheduled service,
and the audit log's own term. Data goes in through the real pipeline."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from services.retention.app import setup as retention_setup
from services.retention.sweep import AUDIT_RETENTION_DAYS, Sweep
from shared.dates import add_years, amsterdam_date
from shared.partner_client import PartnerClient
from shared.pseudonym import Pseudonymizer
from tests.conftest import System
from tests.integration.lifecycle_support import (
    FakeClock,
    at,
    boxes,
    day,
    deferred,
    melding_ids_of,
    melding_row,
    register,
    rest_of_all,
    rows_on_youth,
    start_lifecycle,
    withdraw,
    youth_id_of,
)
from tests.support import RegionUnderTest, run_cli, valid_bsn

GONE = {"youth": 0, "melding": 0, "match_group": 0, "match_member": 0}
REMINDERS = ("inform.reminder",)
# Unanswered family lookups are asked again by the same sweep (contract §8).
TIMED = (*REMINDERS, "person.lookup")


async def test_expiry_after_two_years_then_archive_purge_after_five(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(601), reported_at="2024-03-10T09:00:00+01:00"))
    youth_id = await youth_id_of(db, "school", "S-1")
    ids = await melding_ids_of(db, youth_id)

    # The day before: 23:59 on 9 March 2026 in Amsterdam.
    report = await lc.sweep(at("2026-03-09T23:59:00+01:00"))
    assert "expired" not in report.counts
    assert (await melding_row(db, "school", "S-1"))["state"] == "active"
    assert await school.rest(ignore=REMINDERS) == []

    # The day of, by Amsterdam's clock: 23:30 UTC on 9 March is 00:30 on 10 March.
    report = await lc.sweep(at("2026-03-09T23:30:00+00:00"))
    assert report.counts.get("expired") == 1
    ended = (await school.take("melding.ended")).body
    assert ended == {"type": "melding.ended", "melding_ref": "S-1", "reason": "expired"}
    row = await melding_row(db, "school", "S-1")
    assert row["state"] == "archived" and row["end_reason"] == "expired"
    assert row["purge_on"] == day("2031-03-10")

    # Idempotent: the next sweep does nothing, and nothing is said twice.
    report = await lc.sweep(at("2026-03-10T12:00:00+01:00"))
    assert "expired" not in report.counts
    assert await school.rest(ignore=REMINDERS) == []

    # The archive: kept the day before its term ends, gone on the day.
    report = await lc.sweep(at("2031-03-09T23:59:59+01:00"))
    assert "archive_purged" not in report.counts
    assert (await melding_row(db, "school", "S-1"))["state"] == "archived"
    report = await lc.sweep(at("2031-03-10T00:00:00+01:00"))
    assert report.counts.get("archive_purged") == 1
    assert await rows_on_youth(db, youth_id, ids) == GONE
    assert await school.rest(ignore=REMINDERS) == []  # an archive purge tells nobody
    report = await lc.sweep(at("2031-03-10T00:00:00+01:00"))
    assert "archive_purged" not in report.counts


async def test_a_late_sweep_still_purges_seven_years_after_the_melding(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(602), reported_at="2024-03-10T09:00:00+01:00"))
    await lc.sweep(at("2026-05-01T12:00:00+02:00"))  # the service was down for weeks
    row = await melding_row(db, "school", "S-1")
    assert row["state"] == "archived"
    assert row["purge_on"] == day("2031-03-10")  # from the expiry date, not the sweep


async def test_expiry_of_a_match_member_ends_the_group(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    bsn = valid_bsn(603)
    await school.accepted(register("S-1", bsn, reported_at="2024-03-10T09:00:00+01:00"))
    await team.accepted(register("T-1", bsn, reported_at="2025-01-10T09:00:00+01:00"))
    await team.take("match.notice")
    await school.take("match.notice")
    youth_id = await youth_id_of(db, "school", "S-1")

    await lc.sweep(at("2026-03-10T09:00:00+01:00"))
    assert (await school.take("melding.ended")).body["reason"] == "expired"
    group = await db.fetchrow("SELECT id, ended_at FROM match_group WHERE youth_id = $1", youth_id)
    assert group is not None and group["ended_at"] is not None
    assert (await melding_row(db, "jeugdteam", "T-1"))["state"] == "active"
    # The one left hears that the match is over, and nothing else.
    ended = (await team.take("match.ended")).body
    assert ended == {"type": "match.ended", "match_id": str(group["id"]), "melding_ref": "T-1"}
    assert await rest_of_all(school, team, ignore=REMINDERS) == {"school": [], "jeugdteam": []}


async def _youth_with_active_and_archived(
    lc: Any, box: dict[str, Any], bsn: str, birth_date: str, reported_at: str
) -> None:
    """school and jeugdteam active (a match), jgz archived."""
    jgz = box["jgz"]
    await jgz.accepted(register("J-1", bsn, birth_date=birth_date, reported_at=reported_at))
    await jgz.accepted(withdraw("J-1", "risk_ended"))
    for partner, ref in ((box["school"], "S-1"), (box["jeugdteam"], "T-1")):
        await partner.accepted(register(ref, bsn, birth_date=birth_date, reported_at=reported_at))
    await box["jeugdteam"].accepted({"type": "regie.claim", "melding_ref": "T-1"})
    await rest_of_all(*box.values(), seconds=0.2)


async def test_everything_on_a_youth_is_purged_on_the_23rd_birthday(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    box = boxes(partners)
    bsn = valid_bsn(604)
    await _youth_with_active_and_archived(
        lc, box, bsn, birth_date="2004-06-15", reported_at="2026-05-01T10:00:00+02:00"
    )
    youth_id = await youth_id_of(db, "school", "S-1")
    ids = await melding_ids_of(db, youth_id)

    # Summer time: 21:59 UTC on 14 June is 23:59 in Amsterdam, still 22 years old.
    report = await lc.sweep(at("2027-06-14T21:59:00+00:00"))
    assert "age_limit" not in report.counts
    assert await db.fetchval("SELECT count(*) FROM melding WHERE youth_id = $1", youth_id) == 3

    # 22:30 UTC on 14 June is 00:30 on 15 June in Amsterdam: the 23rd birthday.
    report = await lc.sweep(at("2027-06-14T22:30:00+00:00"))
    assert report.counts.get("age_limit") == 1
    for partner, ref in ((box["school"], "S-1"), (box["jeugdteam"], "T-1")):
        ended = (await partner.take("melding.ended")).body
        assert ended == {"type": "melding.ended", "melding_ref": ref, "reason": "age_limit"}
    # No regie.notice, and nothing to the archive's owner.
    assert await rest_of_all(*box.values(), ignore=TIMED) == {p: [] for p in box}
    assert await rows_on_youth(db, youth_id, ids) == GONE
    # And nothing is left half-deleted anywhere.
    assert await db.fetchval("SELECT count(*) FROM youth") == 0
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await db.fetchval("SELECT count(*) FROM match_group") == 0
    assert await db.fetchval("SELECT count(*) FROM match_member") == 0

    report = await lc.sweep(at("2027-06-15T12:00:00+02:00"))
    assert "age_limit" not in report.counts
    assert await rest_of_all(*box.values(), seconds=0.2, ignore=TIMED) == {p: [] for p in box}


async def test_born_on_29_february_leaves_on_28_february(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(
        register(
            "S-1", valid_bsn(605), birth_date="2004-02-29", reported_at="2026-01-10T10:00:00+01:00"
        )
    )
    report = await lc.sweep(at("2027-02-27T23:59:00+01:00"))
    assert "age_limit" not in report.counts
    assert await db.fetchval("SELECT count(*) FROM youth") == 1
    report = await lc.sweep(at("2027-02-28T00:00:00+01:00"))
    assert report.counts.get("age_limit") == 1
    assert (await school.take("melding.ended")).body["reason"] == "age_limit"
    assert await db.fetchval("SELECT count(*) FROM youth") == 0


async def test_an_archive_alone_is_purged_on_the_23rd_birthday(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(
        register(
            "S-1", valid_bsn(606), birth_date="2004-12-01", reported_at="2026-01-10T10:00:00+01:00"
        )
    )
    await school.accepted(withdraw("S-1", "risk_ended"))
    report = await lc.sweep(at("2027-12-01T08:00:00+01:00"))
    assert report.counts.get("age_limit") == 1
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await db.fetchval("SELECT count(*) FROM youth") == 0
    assert await school.rest(ignore=REMINDERS) == []  # an archived melding is not announced


async def test_sweeps_work_in_batches_and_handle_every_row(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    school = boxes(partners)["school"]
    refs = [f"S-{n}" for n in range(7)]
    for n, ref in enumerate(refs):
        await school.accepted(
            register(ref, valid_bsn(610 + n), reported_at="2024-03-10T09:00:00+01:00")
        )
    for n in range(5):
        await db.execute(
            "INSERT INTO audit_log (at, action, actor) VALUES ($1, 'old', 'test')",
            at("2018-01-01T00:00:00+00:00") + timedelta(minutes=n),
        )

    report = await lc.sweep(at("2026-03-10T12:00:00+01:00"), page=2)
    assert report.counts["expired"] == 7
    assert report.counts["audit_expired"] == 5
    ended = [(await school.take("melding.ended")).body["melding_ref"] for _ in refs]
    assert sorted(ended) == sorted(refs)
    assert await db.fetchval("SELECT count(*) FROM melding WHERE state = 'active'") == 0

    report = await lc.sweep(at("2031-03-10T12:00:00+01:00"), page=2)
    assert report.counts["archive_purged"] == 7
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await db.fetchval("SELECT count(*) FROM youth") == 0


async def test_two_sweeps_at_once_act_exactly_once(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    lc = await start_lifecycle(system)
    other = await system.start("retention", setup=retention_setup_without_schedule)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    # Expiring: six youths, each with a melding of school and of jeugdteam (a match).
    for n in range(6):
        bsn = valid_bsn(630 + n)
        await school.accepted(register(f"S-{n}", bsn, reported_at="2024-03-10T09:00:00+01:00"))
        await team.accepted(register(f"T-{n}", bsn, reported_at="2024-03-10T09:00:00+01:00"))
    # Reminders due: four recent meldingen nobody confirmed.
    for n in range(4):
        await school.accepted(
            register(f"R-{n}", valid_bsn(640 + n), reported_at="2026-02-01T09:00:00+01:00")
        )
    # 23rd birthday: two youths.
    for n in range(2):
        await team.accepted(
            register(
                f"A-{n}",
                valid_bsn(650 + n),
                birth_date="2003-03-01",
                reported_at="2025-06-01T09:00:00+02:00",
            )
        )
    await rest_of_all(school, team, seconds=0.3)
    now = at("2026-03-10T12:00:00+01:00")

    first = lc.retention
    region = await first.region.get()
    reports = await asyncio.gather(
        Sweep(first.pool, first.outbox, region, first.pseudonyms, page=3).run(now),
        Sweep(other.pool, other.outbox, region, other.pseudonyms, page=3).run(now),
    )
    total: Counter[str] = Counter()
    for report in reports:
        total.update(report.counts)
    assert total["expired"] == 12
    assert total["age_limit"] == 2
    assert total["inform_reminded"] == 4

    received = await rest_of_all(school, team, seconds=1.0)
    ended = Counter(
        (pid, m.body["melding_ref"], m.body["reason"])
        for pid, got in received.items()
        for m in got
        if m.type == "melding.ended"
    )
    expected = {("school", f"S-{n}", "expired") for n in range(6)}
    expected |= {("jeugdteam", f"T-{n}", "expired") for n in range(6)}
    expected |= {("jeugdteam", f"A-{n}", "age_limit") for n in range(2)}
    assert set(ended) == expected
    assert set(ended.values()) == {1}
    reminded = Counter(
        m.body["melding_ref"] for m in received["school"] if m.type == "inform.reminder"
    )
    assert reminded == {f"R-{n}": 1 for n in range(4)}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'archived' AND actor = 'system'"
        )
        == 12
    )

    again = await lc.sweep(now)
    assert not {"expired", "age_limit", "inform_reminded"} & set(again.counts)
    assert await rest_of_all(school, team, seconds=0.3) == {"school": [], "jeugdteam": []}


async def retention_setup_without_schedule(runtime: Any) -> None:
    return None


async def test_cli_runs_one_full_sweep_as_of_the_given_time(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(660), reported_at="2024-03-10T09:00:00+01:00"))
    registered_ref = await db.fetchval(
        "SELECT youth_ref FROM audit_log WHERE action = 'registered'"
    )
    await school.accepted(register("S-2", valid_bsn(661), reported_at="2026-02-01T09:00:00+01:00"))
    await school.accepted(
        register(
            "S-3", valid_bsn(662), birth_date="2003-03-01", reported_at="2025-06-01T09:00:00+02:00"
        )
    )
    result = await run_cli(test_region, "retention", "run", "--now", "2026-03-10T08:00:00+01:00")
    assert result.exit_code == 0, result.output
    for line in ("expired: 1", "age_limit: 1", "inform_reminded: 1"):
        assert line in result.output, result.output
    assert (await school.take("melding.ended", melding_ref="S-1")).body["reason"] == "expired"
    assert (await school.take("melding.ended", melding_ref="S-3")).body["reason"] == "age_limit"
    assert (await school.take("inform.reminder")).body["melding_ref"] == "S-2"
    assert (await melding_row(db, "school", "S-1"))["state"] == "archived"
    # The CLI used the region's pseudonym key: the same youth has the same audit ref.
    assert (
        await db.fetchval("SELECT youth_ref FROM audit_log WHERE action = 'archived'")
        == registered_ref
    )

    bad = await run_cli(test_region, "retention", "run", "--now", "2026-03-10T08:00:00")
    assert bad.exit_code != 0 and "offset" in bad.output


def retention_gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name, {"service": "retention"})
    assert value is not None, name
    return value


async def test_the_retention_service_sweeps_on_its_own(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    # Reported more than two years ago by the real clock: due at the first sweep.
    reported = datetime.now(UTC) - timedelta(days=2 * 366 + 2)
    await school.accepted(register("S-1", valid_bsn(663), reported_at=reported.isoformat()))
    await system.start(
        "retention",
        setup=retention_setup,
        settings=test_region.with_settings(retention_interval_seconds=0.2).settings,
    )
    ended = await school.take("melding.ended")
    assert ended.body == {"type": "melding.ended", "melding_ref": "S-1", "reason": "expired"}
    row = await melding_row(db, "school", "S-1")
    assert row["state"] == "archived"
    assert row["purge_on"] == add_years(amsterdam_date(reported), 2 + 5)
    # Sweeping every 0.2 s, it still says it once.
    last_sweep = retention_gauge("vi_retention_last_sweep_timestamp_seconds")
    assert await school.rest(0.8, ignore=REMINDERS) == []
    # What VIRetentionSweepLate and VILeadEscalationOverdue read.
    assert retention_gauge("vi_retention_last_sweep_timestamp_seconds") > last_sweep
    assert retention_gauge("vi_retention_interval_seconds") == 0.2
    assert retention_gauge("vi_lead_escalations_overdue") == 0


async def test_the_audit_log_is_pseudonymous_and_has_its_own_term(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    lc = await start_lifecycle(system, FakeClock(at("2026-06-01T10:00:00+02:00")))
    box = boxes(partners)
    school, team, brp = box["school"], box["jeugdteam"], box["brp"]
    bsn = valid_bsn(670)
    secret = "vader dreigt met geweld bij melding"
    await school.accepted(
        register("S-1", bsn, birth_date="2011-07-19", reported_at="2026-05-01T10:00:00+02:00")
    )
    await team.accepted(
        register("T-1", bsn, birth_date="2011-07-19", reported_at="2026-05-02T10:00:00+02:00")
    )
    await school.accepted(deferred("S-1", secret))
    await brp.accepted(
        {
            "type": "person.moved",
            "bsn": bsn,
            "municipality": "0599",
            "moved_at": "2026-06-01T09:00:00+02:00",
        }
    )
    await team.accepted(withdraw("T-1", "risk_ended"))
    no_bsn = register("S-2", valid_bsn(671), reported_at="2026-05-01T10:00:00+02:00")
    no_bsn["youth"] = {
        "surname": "Van der Berg-Oosterhuis",
        "sex": "F",
        "birth_date": "2012-02-03",
        "municipality": "0363",
    }
    await school.accepted(no_bsn)
    await lc.sweep(at("2026-06-01T12:00:00+02:00"))  # reminders for S-2

    rows = await db.fetch("SELECT * FROM audit_log ORDER BY id")
    actions = Counter(r["action"] for r in rows)
    assert actions["registered"] == 3
    assert actions["inform_deferred"] == 1 and actions["moved"] == 1
    assert actions["archived"] == 1 and actions["inform_reminded"] >= 1
    everything = " ".join(str(dict(r)) for r in rows)
    for forbidden in (bsn, "2011-07-19", "Berg", "Oosterhuis", "2012-02-03", secret):
        assert forbidden not in everything, forbidden
    # youth_ref is a keyed, one-way pseudonym of the stored identity hash: not the hash.
    pseudonyms = Pseudonymizer(test_region.settings.pseudonym_key)
    identity = pseudonyms.youth_by_bsn(bsn)
    refs = {r["youth_ref"] for r in rows if r["melding_ref"] in ("S-1", "T-1")}
    assert refs == {pseudonyms.audit_ref(identity)}
    assert identity.hex()[:24] not in everything

    # The log keeps its own term: older rows go, recent rows stay.
    now = at("2026-06-01T12:00:00+02:00")
    old = now - timedelta(days=AUDIT_RETENTION_DAYS, hours=1)
    recent = now - timedelta(days=AUDIT_RETENTION_DAYS) + timedelta(hours=1)
    await db.execute(
        "INSERT INTO audit_log (at, action, actor) VALUES ($1, 'old', 't'), ($2, 'recent', 't')",
        old,
        recent,
    )
    report = await lc.sweep(now)
    assert report.counts.get("audit_expired") == 1
    left = {r["action"] for r in await db.fetch("SELECT action FROM audit_log")}
    assert "old" not in left and "recent" in left and "registered" in left


_STATE = {
    "melding": "SELECT melding_ref, state, purge_on, inform_reminded_at FROM melding",
    "youth": "SELECT id FROM youth",
    "audit_log": "SELECT id, action FROM audit_log",
    "outbox": "SELECT id FROM outbox",
    "inbox": "SELECT partner_id, message_id FROM inbox",
    "sent_email": "SELECT message_id FROM sent_email",
}


async def _state(db: asyncpg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(tuple(r) for r in await db.fetch(sql)) for table, sql in _STATE.items()}


async def test_a_dry_run_counts_per_rule_what_a_sweep_does_and_changes_nothing(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("D-1", valid_bsn(680), reported_at="2024-03-10T09:00:00+01:00"))
    await school.accepted(register("D-2", valid_bsn(681), reported_at="2024-03-11T09:00:00+01:00"))
    await school.accepted(
        register(
            "D-3", valid_bsn(682), birth_date="2003-03-01", reported_at="2025-06-01T09:00:00+02:00"
        )
    )
    await db.execute(
        "INSERT INTO audit_log (at, action, actor) VALUES ('2018-01-01T00:00:00Z', 'old', 't')"
    )
    await db.execute(
        "INSERT INTO sent_email (message_id, sent_at) "
        "VALUES ('old-mail', now() - interval '46 days')"
    )
    before = await _state(db)
    as_of = "2026-03-12T08:00:00+01:00"

    dry = await run_cli(test_region, "retention", "run", "--now", as_of, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "nothing was changed" in dry.output
    expected = {
        "age_limit": 1,
        "expired": 2,
        "archive_purged": 0,
        "lead_escalated": 0,
        "inform_reminded": 0,
        "inbox_expired": 0,
        "sent_email_expired": 1,
        "audit_expired": 1,
    }
    for name, count in expected.items():
        assert f"  {name}: {count} (" in dry.output, dry.output
    assert await _state(db) == before
    assert await school.rest(0.5) == []  # nobody was told anything

    done = await run_cli(test_region, "retention", "run", "--now", as_of)
    assert done.exit_code == 0, done.output
    for name, count in expected.items():  # the rehearsal said exactly what the sweep did
        assert f"  {name}: {count} (" in done.output, done.output
    assert await _state(db) != before


async def test_a_sweep_far_ahead_of_the_clock_needs_yes_and_keeps_the_dedup_window(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(
        register("F-1", valid_bsn(690), reported_at=datetime.now(UTC).isoformat())
    )
    await db.execute("INSERT INTO sent_email (message_id) VALUES ('fresh-mail'), ('other-mail')")
    inbox = await db.fetch("SELECT partner_id, message_id FROM inbox")
    assert inbox
    far = (datetime.now(UTC) + timedelta(days=3 * 365)).isoformat()

    refused = await run_cli(test_region, "retention", "run", "--now", far)
    assert refused.exit_code == 1
    assert "days ahead of the clock" in refused.output and "--yes" in refused.output
    assert (await melding_row(db, "school", "F-1"))["state"] == "active"

    swept = await run_cli(test_region, "retention", "run", "--now", far, "--yes")
    assert swept.exit_code == 0, swept.output
    assert "  expired: 1 (" in swept.output
    assert (await melding_row(db, "school", "F-1"))["state"] == "archived"
    # Three simulated years on, the dedup records are only days old by the real clock.
    assert await db.fetch("SELECT partner_id, message_id FROM inbox") == inbox
    assert await db.fetchval("SELECT count(*) FROM sent_email") == 2
    assert "  inbox_expired: 0 (" in swept.output
