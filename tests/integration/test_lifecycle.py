"""How meldingen end: withdraw (archive or purge), the archive's single signal, and
what the population register reports (move, death). Through the real pipeline."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.integration.lifecycle_support import (
    FakeClock,
    at,
    boxes,
    day,
    deferred,
    mails_to,
    melding_ids_of,
    melding_row,
    register,
    rest_of_all,
    rows_on_youth,
    start_lifecycle,
    withdraw,
    youth_id_of,
)
from tests.support import RegionUnderTest, valid_bsn

REPORTED = "2026-06-01T10:00:00+02:00"
NOT_A_MATCH = ("inform.reminder",)


def moved(bsn: str, municipality: str) -> dict[str, Any]:
    return {
        "type": "person.moved",
        "bsn": bsn,
        "municipality": municipality,
        "moved_at": "2026-11-01T09:00:00+01:00",
    }


def deceased(bsn: str) -> dict[str, Any]:
    return {"type": "person.deceased", "bsn": bsn, "died_on": "2026-11-01"}


async def test_withdraw_risk_ended_archives_for_five_years(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    clock = FakeClock(at("2026-06-15T23:30:00+00:00"))  # 16 June in Amsterdam
    await start_lifecycle(system, clock)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(501), reported_at=REPORTED))
    await school.accepted(deferred("S-1", "gezin is in crisis"))

    receipt = await school.accepted(withdraw("S-1", "risk_ended"))
    assert receipt.body["melding_ref"] == "S-1"
    row = await melding_row(db, "school", "S-1")
    assert row["state"] == "archived"
    assert row["end_reason"] == "risk_ended"
    assert row["ended_at"] == clock.now
    assert row["purge_on"] == day("2031-06-16")  # 5 years from the Amsterdam date
    # The archive keeps no informing facts.
    assert (row["informed"], row["informed_on"], row["deferred_reason"]) == (None, None, None)
    # Its own withdraw is not announced back to the owner.
    assert await school.rest() == []
    assert await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'archived' AND actor = 'school'"
    )

    assert await school.rejected(withdraw("S-1", "risk_ended")) == ["not_active"]
    assert await school.rejected(withdraw("S-1", "unjustified")) == ["not_active"]
    assert (await melding_row(db, "school", "S-1"))["state"] == "archived"


async def test_withdraw_unjustified_purges_the_melding_and_the_youth(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    school = boxes(partners)["school"]
    await school.accepted(register("S-1", valid_bsn(502), reported_at=REPORTED))
    youth_id = await youth_id_of(db, "school", "S-1")
    ids = await melding_ids_of(db, youth_id)

    await school.accepted(withdraw("S-1", "unjustified"))
    assert await rows_on_youth(db, youth_id, ids) == {
        "youth": 0,
        "melding": 0,
        "match_group": 0,
        "match_member": 0,
    }
    assert await school.rest() == []
    assert await school.rejected(withdraw("S-1", "unjustified")) == ["unknown_melding"]
    # The ref stays used after the purge (only its hash is kept).
    assert await school.rejected(register("S-1", valid_bsn(599), reported_at=REPORTED)) == [
        "duplicate_ref"
    ]
    assert await db.fetchval("SELECT count(*) FROM melding_ref_used") == 1
    assert b"S-1" not in bytes(await db.fetchval("SELECT ref_hash FROM melding_ref_used"))


async def test_withdraw_unjustified_in_a_match_keeps_the_youth_and_ends_the_group(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    bsn = valid_bsn(503)
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    await team.accepted(register("T-1", bsn, reported_at=REPORTED))
    await school.take("match.notice")
    await team.take("match.notice")
    youth_id = await youth_id_of(db, "school", "S-1")

    await school.accepted(withdraw("S-1", "unjustified"))
    assert (
        await db.fetchval(
            "SELECT count(*) FROM melding WHERE partner_id = 'school' AND melding_ref = 'S-1'"
        )
        == 0
    )
    assert (await melding_row(db, "jeugdteam", "T-1"))["state"] == "active"
    assert await db.fetchval("SELECT count(*) FROM youth WHERE id = $1", youth_id) == 1
    group = await db.fetchrow("SELECT * FROM match_group WHERE youth_id = $1", youth_id)
    assert group is not None and group["ended_at"] is not None
    assert await db.fetchval("SELECT count(*) FROM match_member") == 1  # only T-1's
    # The one left hears that the match is over; no lead was set, so nothing more.
    ended = (await team.take("match.ended")).body
    assert ended == {"type": "match.ended", "match_id": str(group["id"]), "melding_ref": "T-1"}
    assert await rest_of_all(school, team) == {"school": [], "jeugdteam": []}


async def test_when_the_leads_melding_ends_the_one_left_hears_the_match_is_over(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    bsn = valid_bsn(513)
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    await team.accepted(register("T-1", bsn, reported_at=REPORTED))
    await team.accepted({"type": "regie.claim", "melding_ref": "T-1"})
    await rest_of_all(school, team, seconds=0.2)
    match_id = await db.fetchval("SELECT id FROM match_group")

    await team.accepted(withdraw("T-1", "risk_ended"))
    # match.ended, not a regie.notice clearing the lead of a match that is gone.
    ended = (await school.take("match.ended")).body
    assert ended == {"type": "match.ended", "match_id": str(match_id), "melding_ref": "S-1"}
    assert await rest_of_all(school, team) == {"school": [], "jeugdteam": []}
    group = await db.fetchrow("SELECT ended_at, lead_melding_id FROM match_group")
    assert group is not None and group["ended_at"] is not None
    assert group["lead_melding_id"] is None


async def test_only_the_owner_can_withdraw(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    await school.accepted(register("S-1", valid_bsn(504), reported_at=REPORTED))

    assert await team.rejected(withdraw("S-1", "unjustified")) == ["unknown_melding"]
    assert await team.rejected(withdraw("S-1", "risk_ended")) == ["unknown_melding"]
    assert await school.rejected(withdraw("S-404", "risk_ended")) == ["unknown_melding"]
    assert (await melding_row(db, "school", "S-1"))["state"] == "active"
    assert await school.rest() == []


async def test_an_archived_melding_signals_once(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team, jgz = box["school"], box["jeugdteam"], box["jgz"]
    bsn = valid_bsn(505)
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    await school.accepted(withdraw("S-1", "risk_ended"))

    # The next registration by another organisation meets the archived melding.
    await team.accepted(register("T-1", bsn, reported_at=REPORTED))
    to_team = (await team.take("match.notice")).body
    assert to_team["melding_ref"] == "T-1"
    [counterpart] = to_team["counterparts"]
    assert counterpart["partner"] == "school"
    assert counterpart["archived"] is True
    assert counterpart["reporter"]["email"] == "s-1@reporter.example"
    to_school = (await school.take("match.notice")).body
    assert to_school["melding_ref"] == "S-1"
    assert to_school["match_id"] == to_team["match_id"]
    assert [(c["partner"], c["archived"]) for c in to_school["counterparts"]] == [
        ("jeugdteam", False)
    ]
    # Both reporters get the match e-mail.
    [mail] = await mails_to(test_region, "s-1@reporter.example", 1)
    assert "S-1" in mail.get_content() and "t-1@reporter.example" in mail.get_content()
    await mails_to(test_region, "t-1@reporter.example", 1)
    assert (await melding_row(db, "school", "S-1"))["archive_signalled"] is True

    # After that it never signals again: a third organisation matches the active one.
    await jgz.accepted(register("J-1", bsn, reported_at=REPORTED))
    to_jgz = (await jgz.take("match.notice")).body
    assert [(c["partner"], c["archived"]) for c in to_jgz["counterparts"]] == [("jeugdteam", False)]
    to_team = (await team.take("match.notice")).body
    assert [c["partner"] for c in to_team["counterparts"]] == ["jgz"]
    assert await school.rest() == []
    # The newcomer's e-mail shows this match's e-mails went out; the school got none.
    await mails_to(test_region, "j-1@reporter.example", 1)
    await asyncio.sleep(0.3)
    assert len(await mails_to(test_region, "s-1@reporter.example", 1)) == 1


async def test_person_moved_tells_active_partners_and_the_new_coordinator(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team, jgz, brp = box["school"], box["jeugdteam"], box["jgz"], box["brp"]
    bsn = valid_bsn(506)
    await jgz.accepted(register("J-1", bsn, reported_at=REPORTED))
    await jgz.accepted(withdraw("J-1", "risk_ended"))
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    await team.accepted(register("T-1", bsn, reported_at=REPORTED))
    await rest_of_all(school, team, jgz, seconds=0.2)

    receipt = await brp.accepted(moved(bsn, "0599"))
    assert receipt.body["melding_ref"] is None
    for partner, ref in ((school, "S-1"), (team, "T-1")):
        notice = (await partner.take("youth.moved")).body
        assert notice == {"type": "youth.moved", "melding_ref": ref, "municipality": "0599"}
    youth_id = await youth_id_of(db, "school", "S-1")
    assert await db.fetchval("SELECT municipality FROM youth WHERE id = $1", youth_id) == "0599"
    [mail] = await mails_to(test_region, "regie@rotterdam.example", 1)
    text = mail.get_content()
    assert "S-1" in text and "T-1" in text and "J-1" not in text
    assert bsn not in text and "2014" not in text
    # The archived melding's partner is not told: the archive is shown to nobody.
    assert await rest_of_all(school, team, jgz) == {"school": [], "jeugdteam": [], "jgz": []}
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'moved'") == 1


async def test_person_moved_with_only_an_archive_updates_quietly(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    jgz, brp = box["jgz"], box["brp"]
    bsn = valid_bsn(507)
    await jgz.accepted(register("J-1", bsn, reported_at=REPORTED))
    await jgz.accepted(withdraw("J-1", "risk_ended"))

    await brp.accepted(moved(bsn, "0344"))  # archived only: still "something stored"
    youth_id = await youth_id_of(db, "jgz", "J-1")
    assert await db.fetchval("SELECT municipality FROM youth WHERE id = $1", youth_id) == "0344"
    assert await jgz.rest() == []
    assert not [m for m in test_region.mail_dir.glob("*.eml")]


async def test_person_messages_on_an_unknown_bsn_get_unknown_person(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, brp = box["school"], box["brp"]
    bsn = valid_bsn(508)
    assert await brp.rejected(moved(bsn, "0599")) == ["unknown_person"]
    assert await brp.rejected(deceased(bsn)) == ["unknown_person"]
    # Stored, then purged: nothing is stored any more.
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    await school.accepted(withdraw("S-1", "unjustified"))
    assert await brp.rejected(moved(bsn, "0599")) == ["unknown_person"]


async def test_only_the_population_register_may_send_person_messages(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, brp = box["school"], box["brp"]
    bsn = valid_bsn(509)
    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    assert await school.rejected(moved(bsn, "0599")) == ["not_authorized"]
    assert await school.rejected(deceased(bsn)) == ["not_authorized"]
    assert await brp.rejected(register("B-1", valid_bsn(510), reported_at=REPORTED)) == [
        "not_authorized"
    ]
    assert (await melding_row(db, "school", "S-1"))["state"] == "active"
    assert await db.fetchval("SELECT municipality FROM youth") == "0363"


async def test_death_purges_everything_and_tells_active_owners_only(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team, jgz, gp, brp = (
        box["school"],
        box["jeugdteam"],
        box["jgz"],
        box["huisarts"],
        box["brp"],
    )
    bsn = valid_bsn(511)
    await gp.accepted(register("H-1", bsn, reported_at=REPORTED))
    await gp.accepted(withdraw("H-1", "risk_ended"))
    for partner, ref in ((school, "S-1"), (team, "T-1"), (jgz, "J-1")):
        await partner.accepted(register(ref, bsn, reported_at=REPORTED))
    # The lead is the first melding to go: ending them one by one would clear it and
    # tell the others, who are about to end too.
    await school.accepted({"type": "regie.claim", "melding_ref": "S-1"})
    await rest_of_all(school, team, jgz, gp, seconds=0.2)
    youth_id = await youth_id_of(db, "school", "S-1")
    ids = await melding_ids_of(db, youth_id)
    assert len(ids) == 4

    await brp.accepted(deceased(bsn))
    for partner, ref in ((school, "S-1"), (team, "T-1"), (jgz, "J-1")):
        ended = (await partner.take("melding.ended")).body
        assert ended == {"type": "melding.ended", "melding_ref": ref, "reason": "deceased"}
    # No lead change is announced on the way out, and the archive's owner hears nothing.
    quiet = await rest_of_all(school, team, jgz, gp)
    assert quiet == {p.partner_id: [] for p in (school, team, jgz, gp)}
    assert await rows_on_youth(db, youth_id, ids) == {
        "youth": 0,
        "melding": 0,
        "match_group": 0,
        "match_member": 0,
    }
    purged = await db.fetch(
        "SELECT actor, melding_ref, detail FROM audit_log WHERE action = 'purged'"
    )
    assert sorted(r["melding_ref"] for r in purged) == ["H-1", "J-1", "S-1", "T-1"]
    assert {r["detail"]["reason"] for r in purged} == {"deceased"}
    assert {r["actor"] for r in purged} == {"brp"}
    assert await brp.rejected(deceased(bsn)) == ["unknown_person"]
