"""The operator's commands against a running region."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.retention.app import setup as retention_setup
from shared.amqp.topology import MATCHER_QUEUE
from shared.envelopes import Command
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.service import Runtime
from tests.conftest import System
from tests.support import (
    COMMANDS,
    RegionUnderTest,
    eventually,
    matcher_of,
    register_body,
    run_cli,
    valid_bsn,
)


async def test_status_reports_queues_outbox_and_replicas(
    test_region: RegionUnderTest, pipeline: System, db: asyncpg.Connection[Any]
) -> None:
    await pipeline.start("retention", setup=retention_setup)

    async def reported() -> bool:
        return int(await db.fetchval("SELECT count(*) FROM service_instance WHERE ready")) == 4

    await eventually(reported)
    result = await run_cli(test_region, "status", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    names = {q["queue"] for q in doc["queues"]}
    assert {"vi.ingest", "vi.matcher", "partner.school", "vi.rejected"} <= names
    ingest = next(q for q in doc["queues"] if q["queue"] == "vi.ingest")
    assert ingest["consumers"] == 1
    assert doc["services"]["matcher"] == {"replicas": 1, "ready": 1, "stale": 0}
    assert doc["outbox"]["rows"] == 0
    assert doc["attention"] == [] and doc["exit_code"] == 0
    # One broker node: every quorum queue has its one replica, led by that node.
    assert len(doc["cluster_nodes"]) == 1
    matcher_replicas = next(r for r in doc["replicas"] if r["queue"] == "vi.matcher")
    assert matcher_replicas["members"] == doc["cluster_nodes"]
    assert matcher_replicas["leader"] == doc["cluster_nodes"][0]
    table = await run_cli(test_region, "status")
    assert "vi.matcher" in table.output and "Services" in table.output
    assert "All well." in table.output and table.exit_code == 0


async def _park_one(
    system: System, school: PartnerClient, ref: str, *, after_commit: bool, parked_before: int
) -> str:
    """Run a matcher that always fails (before or after its commit) until one message
    is parked; returns its message_id."""

    async def setup(runtime: Runtime) -> None:
        real = matcher_of(runtime)

        async def failing(commands: Sequence[Command]) -> None:
            if after_commit:
                await real(commands)
            raise ConnectionRefusedError("database went away")

        runtime.consume(MATCHER_QUEUE, COMMANDS, failing, batch_size=1)

    broken = await system.start("matcher", setup=setup)
    mid = await school.send(register_body(ref, bsn=valid_bsn(hash(ref) % 10**6)))
    assert mid is not None
    channel = await broken.connection.channel()
    queue = await channel.get_queue("vi.matcher.parked", ensure=False)

    async def parked() -> bool:
        await queue.declare()  # refreshes the message count
        return (queue.declaration_result.message_count or 0) > parked_before

    await eventually(parked)
    await channel.close()
    await system.stop(broken)
    return mid


async def test_parked_list_show_and_replay_without_duplicate_effect(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await system.start("ingest")
    school = partners["school"]
    # One message parked before it took effect, one parked after its effect committed.
    fresh = await _park_one(system, school, "P-1", after_commit=False, parked_before=0)
    done = await _park_one(system, school, "P-2", after_commit=True, parked_before=1)
    first_receipt = await school.receipt_for(done)  # P-2's effect and receipt happened
    assert first_receipt.body["status"] == "accepted"

    listing = await run_cli(test_region, "parked", "list", "--json")
    items = {i["message_id"]: i for i in json.loads(listing.stdout)}
    assert set(items) == {fresh, done}
    assert "ConnectionRefusedError" in items[fresh]["error"]
    assert items[fresh]["attempts"] == 3
    shown = await run_cli(test_region, "parked", "show", fresh)
    assert json.loads(shown.stdout)["body"]["message"]["melding_ref"] == "P-1"

    await system.start("matcher")
    replayed = await run_cli(
        test_region, "parked", "replay", "--all", "--queue", "vi.matcher", "--operator", "op-1"
    )
    assert "replayed 2" in replayed.output, replayed.output
    assert (await school.receipt_for(fresh)).body["status"] == "accepted"
    assert await school.quiet(1.0) == []  # P-2 is not answered, nor registered, again
    assert await db.fetchval("SELECT count(*) FROM melding") == 2
    audited = await db.fetch("SELECT actor, detail FROM audit_log WHERE action = 'parked_replayed'")
    assert {(r["actor"], r["detail"]["message_id"]) for r in audited} == {
        ("op-1", fresh),
        ("op-1", done),
    }
    assert {r["detail"]["queue"] for r in audited} == {"vi.matcher.parked"}
    empty = await run_cli(test_region, "parked", "list", "--json")
    assert json.loads(empty.stdout) == []
    missing = await run_cli(test_region, "parked", "replay", fresh)
    assert missing.exit_code != 0 and "not found" in missing.output


async def test_rejected_list_and_show_claim_no_sender_without_user_id(
    test_region: RegionUnderTest, pipeline: System, db: asyncpg.Connection[Any]
) -> None:
    runtime = pipeline.runtimes[0]
    # Published with the services' own login, but without user_id.
    await runtime.publisher.publish(
        OutboundMessage(
            "vi.inbound",
            "melding.register",
            b'{"type": "melding.register"}',
            message_type=None,
            message_id="who-am-i",
        )
    )

    async def landed() -> bool:
        result = await run_cli(test_region, "rejected", "list", "--json")
        return bool(json.loads(result.stdout))

    await eventually(landed)
    result = await run_cli(test_region, "rejected", "list", "--json")
    [item] = json.loads(result.stdout)
    assert item["message_id"] == "who-am-i" and "no user_id" in item["error"]
    assert item["sender"] is None
    assert item["type"] == "melding.register"
    text = await run_cli(test_region, "rejected", "list")
    assert "(no user_id)" in text.output
    assert runtime.settings.service_broker_user not in text.output
    shown = json.loads((await run_cli(test_region, "rejected", "show", "who-am-i")).stdout)
    assert shown["body"] == {"type": "melding.register"}
    assert shown["sender"] is None
    # Looking does not take it away, and needs only the broker.
    without_db = test_region.with_settings(database_url="postgresql://postgres@127.0.0.1:1/x")
    again = await run_cli(without_db, "rejected", "list", "--json")
    assert len(json.loads(again.stdout)) == 1


async def test_subject_export_and_erase(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    bsn = valid_bsn(5150)
    school, team = partners["school"], partners["jeugdteam"]
    await school.receipt_for(await school.send(register_body("E-1", bsn=bsn)))
    await team.receipt_for(await team.send(register_body("E-2", bsn=bsn)))

    exported = await run_cli(
        test_region, "subject", "export", "--bsn", bsn, "--operator", "gemeente-a"
    )
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    assert sorted(m["melding_ref"] for m in doc["meldingen"]) == ["E-1", "E-2"]
    assert doc["youth"]["birth_date"] == "2014-05-01"
    assert len(doc["matches"]) == 1
    assert bsn not in exported.output  # the index does not know the BSN itself

    erased = await run_cli(
        test_region, "subject", "erase", "--bsn", bsn, "--yes", "--operator", "gemeente-a"
    )
    assert erased.exit_code == 0, erased.output
    for client, ref in ((school, "E-1"), (team, "E-2")):
        got = await client.quiet(2.0)
        ended = [m.body for m in got if m.type == "melding.ended"]
        assert ended == [{"type": "melding.ended", "melding_ref": ref, "reason": "erased"}]
        # Everything ended at once: no melding remains to be told the match ended.
        assert "match.ended" not in [m.type for m in got]
    for table in ("youth", "melding", "match_group", "match_member"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log ORDER BY id")]
    assert "subject_exported" in actions and "subject_erased" in actions
    gone = await run_cli(test_region, "subject", "export", "--bsn", bsn)
    assert gone.exit_code != 0 and "nothing is stored" in gone.output


async def test_stats_suppress_small_cells(
    test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    month = datetime(2026, 3, 1, tzinfo=UTC).date()
    rows = [(month, "onderwijs", "0363", "registered", 1)] * 12
    rows += [(month, "onderwijs", "0363", "informed", 1)] * 6
    rows += [(month, "onderwijs", "0363", "deferred", 1)] * 2
    rows += [(month, "jgz", "0599", "registered", 1)] * 3
    await db.executemany(
        "INSERT INTO stats_fact (month, sector, municipality, kind, delta) VALUES ($1,$2,$3,$4,$5)",
        rows,
    )
    result = await run_cli(test_region, "stats", "--csv")
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(
        "month,sector,municipality,registered,matched,informed,deferred,open"
    )
    assert "2026-03,jgz,0599,<5,<5,<5,<5,<5,-,-,-,<5,<5" in lines
    assert "2026-03,onderwijs,0363,12,<5,6,<5,<5,50%,-,-,<5,<5" in lines


async def test_stats_count_registrations_matches_and_informing_without_identities(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    school, team = partners["school"], partners["jeugdteam"]
    bsn = valid_bsn(6160)
    for client, ref in ((school, "F-1"), (team, "F-2")):
        assert (await client.receipt_for(await client.send(register_body(ref, bsn=bsn)))).body[
            "status"
        ] == "accepted"
    today = datetime.now(UTC).date().isoformat()
    steps: list[tuple[PartnerClient, dict[str, Any]]] = [
        (school, {"melding_ref": "F-1", "deferred_reason": "Gezin nu in crisis"}),
        (school, {"melding_ref": "F-1", "informed": ["parents"], "informed_on": today}),
        (team, {"melding_ref": "F-2", "informed": ["youth", "parents"], "informed_on": today}),
        (team, {"melding_ref": "F-2", "informed": ["parents"], "informed_on": today}),
    ]
    for client, body in steps:
        mid = await client.send({"type": "melding.informed", **body})
        assert (await client.receipt_for(mid)).body["status"] == "accepted"
    totals = {
        (r["sector"], r["kind"]): r["n"]
        for r in await db.fetch(
            "SELECT sector, kind, sum(delta)::int AS n FROM stats_fact GROUP BY sector, kind"
        )
    }
    assert totals == {
        ("onderwijs", "registered"): 1,
        ("jeugdhulp", "registered"): 1,
        ("onderwijs", "matched"): 1,
        ("jeugdhulp", "matched"): 1,
        # A deferral replaced by a confirmation counts as informed only.
        ("onderwijs", "deferred"): 0,
        ("onderwijs", "informed"): 1,
        ("jeugdhulp", "informed"): 1,
    }
    columns = {
        r["column_name"]
        for r in await db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'stats_fact'"
        )
    }
    assert columns == {"id", "month", "sector", "municipality", "kind", "delta"}
    shown = await run_cli(test_region, "stats")
    assert "<5" in shown.stdout and "onderwijs" in shown.stdout
