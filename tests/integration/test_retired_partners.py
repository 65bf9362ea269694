"""Partners that leave the region (`retired = true`) and partners the config no longer
names: what happens to their meldingen, their messages and their mailbox."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from shared.amqp.topology import MATCHER_QUEUE, NOTIFIER_QUEUE, parked_queue
from shared.partner_client import PartnerClient
from tests.conftest import System, apply_region
from tests.integration.lifecycle_support import (
    boxes,
    mails_to,
    register,
    rest_of_all,
    start_lifecycle,
    withdraw,
)
from tests.support import (
    RegionUnderTest,
    cli_env,
    eventually,
    queued_messages,
    region_document,
    region_toml,
    run_cli,
    valid_bsn,
)

REPORTED = "2026-06-01T10:00:00+02:00"


async def _config_without(test_region: RegionUnderTest, system: System, partner_id: str) -> None:
    """Store a config without the partner (as an older version let an operator do), and
    wait until the matcher uses it."""
    document = region_document(test_region.user_prefix)
    document["partner"] = [p for p in document["partner"] if p["id"] != partner_id]
    await apply_region(test_region, document)
    matcher = system.runtimes[1]

    async def reloaded() -> bool:
        return partner_id not in (await matcher.region.get()).partners_by_id

    await eventually(reloaded)


async def test_a_match_with_a_partner_no_longer_in_the_config_does_not_park(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    lifecycle = await start_lifecycle(system)
    box = boxes(partners)
    school, gp, team = box["school"], box["huisarts"], box["jeugdteam"]
    bsn = valid_bsn(801)
    await gp.accepted(register("H-1", bsn, reported_at=REPORTED))
    await team.accepted(register("T-1", bsn, reported_at=REPORTED))
    await gp.take("match.notice")
    await team.take("match.notice")
    await _config_without(test_region, system, "huisarts")

    await school.accepted(register("S-1", bsn, reported_at=REPORTED))
    to_school = (await school.take("match.notice")).body
    named = {c["partner"]: c for c in to_school["counterparts"]}
    assert named["huisarts"]["organisation"] == "huisarts"
    assert named["huisarts"]["sector"] == "onbekend"
    assert named["huisarts"]["reporter"]["email"] == "h-1@reporter.example"
    await team.take("match.notice")
    # The partner the config no longer names gets no notice.
    assert await gp.rest() == []
    for queue in (MATCHER_QUEUE, NOTIFIER_QUEUE):
        assert await queued_messages(lifecycle.retention, parked_queue(queue)) == 0


async def _match_of(db: asyncpg.Connection[Any], melding_ref: str) -> Any:
    return await db.fetchval(
        """SELECT mm.match_id FROM match_member mm JOIN melding m ON m.id = mm.melding_id
           WHERE m.melding_ref = $1""",
        melding_ref,
    )


async def _apply_file(
    test_region: RegionUnderTest, tmp_path: Path, document: dict[str, Any]
) -> Any:
    path = tmp_path / f"region-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(region_toml(document), encoding="utf-8")
    return await run_cli(test_region, "region", "apply", str(path))


async def _apply_in_a_process(
    test_region: RegionUnderTest, tmp_path: Path, document: dict[str, Any]
) -> tuple[int | None, str]:
    path = tmp_path / f"region-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(region_toml(document), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "region",
        "apply",
        str(path),
        env={**os.environ, **cli_env(test_region)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


def _retiring(test_region: RegionUnderTest, *partner_ids: str) -> dict[str, Any]:
    document = region_document(test_region.user_prefix)
    for partner in document["partner"]:
        if partner["id"] in partner_ids:
            partner["retired"] = True
    return document


async def test_retiring_a_partner_withdraws_its_meldingen_once_and_tells_the_others(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
    tmp_path: Path,
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    school, team, jgz, gp = box["school"], box["jeugdteam"], box["jgz"], box["huisarts"]
    pair, trio, alone = valid_bsn(811), valid_bsn(812), valid_bsn(813)
    # The GP leads a match of two, leads a match of three, and is alone on a third youth.
    await gp.accepted(register("H-1", pair, reported_at=REPORTED))
    await team.accepted(register("T-1", pair, reported_at=REPORTED))
    await gp.accepted({"type": "regie.claim", "melding_ref": "H-1"})
    await gp.accepted(register("H-2", trio, reported_at=REPORTED))
    await school.accepted(register("S-2", trio, reported_at=REPORTED))
    await jgz.accepted(register("J-2", trio, reported_at=REPORTED))
    await gp.accepted({"type": "regie.claim", "melding_ref": "H-2"})
    await gp.accepted(register("H-3", alone, reported_at=REPORTED))
    await rest_of_all(school, team, jgz, gp, seconds=0.3)
    pair_match, trio_match = [await _match_of(db, ref) for ref in ("T-1", "S-2")]

    result = await _apply_file(test_region, tmp_path, _retiring(test_region, "huisarts"))
    assert result.exit_code == 0, result.output
    assert "(1 retired: huisarts)" in result.output
    assert "withdrawn: 3 active melding(en)" in result.output

    rows = await db.fetch(
        "SELECT state, end_reason, purge_on FROM melding WHERE partner_id = 'huisarts'"
    )
    assert [(r["state"], r["end_reason"]) for r in rows] == [("archived", "risk_ended")] * 3
    assert all(r["purge_on"] is not None for r in rows)  # kept in the archive for 5 years
    # The match of two is over; the one of three lives on without a lead.
    ended = (await team.take("match.ended")).body
    assert ended == {"type": "match.ended", "match_id": str(pair_match), "melding_ref": "T-1"}
    for partner, ref in ((school, "S-2"), (jgz, "J-2")):
        cleared = (await partner.take("regie.notice")).body
        assert cleared["match_id"] == str(trio_match) and cleared["melding_ref"] == ref
        assert cleared["lead"] is None
    # Each hears it once; the retired partner hears nothing at all.
    quiet = await rest_of_all(school, team, jgz, gp, ignore=("inform.reminder",))
    assert quiet == {"school": [], "jeugdteam": [], "jgz": [], "huisarts": []}
    audit = await db.fetch("SELECT actor, detail FROM audit_log WHERE action = 'archived'")
    assert {(r["actor"], r["detail"]["reason"]) for r in audit} == {("operator", "risk_ended")}

    # Applying the file again withdraws nothing and tells nobody anything.
    again = await _apply_file(test_region, tmp_path, _retiring(test_region, "huisarts"))
    assert again.exit_code == 0, again.output
    assert "unchanged" in again.output and "withdrawn" not in again.output
    quiet = await rest_of_all(school, team, jgz, gp, ignore=("inform.reminder",))
    assert quiet == {"school": [], "jeugdteam": [], "jgz": [], "huisarts": []}

    # From now on every message of the retired partner is refused.
    async def refused() -> bool:
        receipt = await gp.call(register("H-4", valid_bsn(814), reported_at=REPORTED))
        return [e["code"] for e in receipt.body["errors"]] == ["not_authorized"]

    await eventually(refused)
    assert await gp.rejected(withdraw("H-3", "unjustified")) == ["not_authorized"]
    # Ingest answers it itself, also when there is no message_id to pass on.
    await gp.client.send(withdraw("H-3", "unjustified"), message_id="")
    receipt = (await gp.take("receipt", in_reply_to=None)).body
    assert [e["code"] for e in receipt["errors"]] == ["missing_message_id", "not_authorized"]
    assert await db.fetchval("SELECT count(*) FROM melding WHERE partner_id = 'huisarts'") == 3


async def test_a_retired_partners_archive_signals_once_under_its_name_and_sector(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    tmp_path: Path,
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    jgz, gp = box["jgz"], box["huisarts"]
    bsn = valid_bsn(821)
    await gp.accepted(register("H-1", bsn, reported_at=REPORTED))
    result = await _apply_file(test_region, tmp_path, _retiring(test_region, "huisarts"))
    assert result.exit_code == 0, result.output

    await jgz.accepted(register("J-1", bsn, reported_at=REPORTED))
    [counterpart] = (await jgz.take("match.notice")).body["counterparts"]
    assert counterpart["partner"] == "huisarts"
    assert counterpart["organisation"] == "Huisartsenpraktijk West"
    assert counterpart["sector"] == "zorg"
    assert counterpart["archived"] is True
    # Its reporter still gets the match e-mail, naming the newcomer's reporter.
    [mail] = await mails_to(test_region, "h-1@reporter.example", 1)
    assert "j-1@reporter.example" in mail.get_content()
    # The retired partner itself is sent no notice.
    assert await gp.rest() == []


async def test_region_apply_refuses_to_drop_a_partner_that_has_meldingen(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
    tmp_path: Path,
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    gp = box["huisarts"]
    await gp.accepted(register("H-1", valid_bsn(831), reported_at=REPORTED))
    await gp.accepted(withdraw("H-1", "risk_ended"))  # archived meldingen count too
    await gp.accepted(register("H-2", valid_bsn(832), reported_at=REPORTED))
    revision = await db.fetchval("SELECT revision FROM region_config")

    document = region_document(test_region.user_prefix)
    document["partner"] = [p for p in document["partner"] if p["id"] not in ("huisarts", "jgz")]
    result = await _apply_file(test_region, tmp_path, document)
    assert result.exit_code != 0
    assert "huisarts 2" in result.output and "retired = true" in result.output
    assert "jgz" not in result.output  # it has no meldingen
    assert await db.fetchval("SELECT revision FROM region_config") == revision
    assert (
        await db.fetchval(
            "SELECT count(*) FROM melding WHERE partner_id = 'huisarts' AND state = 'active'"
        )
        == 1
    )

    # A partner without meldingen may go.
    document = region_document(test_region.user_prefix)
    document["partner"] = [p for p in document["partner"] if p["id"] != "jgz"]
    result = await _apply_file(test_region, tmp_path, document)
    assert result.exit_code == 0, result.output
    assert await db.fetchval("SELECT revision FROM region_config") == revision + 1


async def test_a_retired_partner_is_refused_even_by_an_ingest_that_missed_the_change(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
    tmp_path: Path,
) -> None:
    """Ingest re-reads the config every few seconds; the matcher reads it in its own
    transaction, so a message let through in between still changes nothing."""
    behind = test_region.with_settings(config_reload_seconds=3600.0).settings
    await system.start("ingest", settings=behind)
    await system.start("matcher")
    await system.start("notifier")
    gp = boxes(partners)["huisarts"]
    await gp.accepted(register("H-1", valid_bsn(841), reported_at=REPORTED))  # ingest has read it
    result = await _apply_file(test_region, tmp_path, _retiring(test_region, "huisarts"))
    assert result.exit_code == 0, result.output

    assert await gp.rejected(register("H-2", valid_bsn(842), reported_at=REPORTED)) == [
        "not_authorized"
    ]
    assert await gp.rejected({"type": "regie.claim", "melding_ref": "H-1"}) == ["not_authorized"]
    states = await db.fetch("SELECT melding_ref, state FROM melding ORDER BY melding_ref")
    assert [(r["melding_ref"], r["state"]) for r in states] == [("H-1", "archived")]


async def test_two_applies_at_once_withdraw_each_melding_once(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    tmp_path: Path,
) -> None:
    await start_lifecycle(system)
    box = boxes(partners)
    team, gp = box["jeugdteam"], box["huisarts"]
    youths = 6
    for i in range(youths):
        await gp.accepted(register(f"H-{i}", valid_bsn(850 + i), reported_at=REPORTED))
        await team.accepted(register(f"T-{i}", valid_bsn(850 + i), reported_at=REPORTED))
    await rest_of_all(team, gp, seconds=0.3)

    document = _retiring(test_region, "huisarts")
    # Two processes, as two operators would run it: two CLI runs in threads of one
    # process share (and swap) its sys.stdout, and one's output can land in the other's.
    results = await asyncio.gather(
        *(_apply_in_a_process(test_region, tmp_path, document) for _ in range(2))
    )
    assert [code for code, _ in results] == [0, 0], results
    withdrawn = [output for _, output in results if "withdrawn" in output]
    assert len(withdrawn) == 1 and f"withdrawn: {youths} active" in withdrawn[0]
    got = await team.rest(1.0, ignore=("inform.reminder",))
    assert sorted(m.body["melding_ref"] for m in got if m.type == "match.ended") == sorted(
        f"T-{i}" for i in range(youths)
    )
    assert len(got) == youths
