"""`verwijsindex rejected ...`: an unknown sender's message is kept whole, named by the
login the broker checked, replayed once the sender is a partner, or purged; replays
and purges are audited."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from shared.amqp.topology import REJECTED_QUEUE
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from tests.conftest import System, apply_region
from tests.support import (
    RegionUnderTest,
    eventually,
    queued_messages,
    region_document,
    register_body,
    run_cli,
    valid_bsn,
)


def _without(region: RegionUnderTest, partner_id: str) -> dict[str, Any]:
    document = region_document(region.user_prefix)
    document["partner"] = [p for p in document["partner"] if p["id"] != partner_id]
    return document


async def _rejected(region: RegionUnderTest) -> list[dict[str, Any]]:
    return list(json.loads((await run_cli(region, "rejected", "list", "--json")).stdout))


async def test_a_message_from_a_partner_added_later_is_replayed_and_answered(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    jgz = partners["jgz"]
    # The partner's login exists, but the partner is not in the region config yet.
    await apply_region(test_region, _without(test_region, "jgz"))
    await asyncio.sleep(0.5)  # the services re-read the config every 0.2 s here
    mid = await jgz.send(register_body("R-1", bsn=valid_bsn(4242)))
    assert mid is not None

    async def landed() -> bool:
        return await queued_messages(pipeline.runtimes[0], REJECTED_QUEUE) == 1

    await eventually(landed)
    [item] = await _rejected(test_region)
    assert item["message_id"] == mid
    assert item["sender"] == jgz.broker_user  # as the broker checked it
    assert "not a partner" in item["error"]

    early = await run_cli(test_region, "rejected", "replay", "--all")
    assert early.exit_code == 1
    assert "still not a partner" in early.output and "replayed 0" in early.output
    assert [i["message_id"] for i in await _rejected(test_region)] == [mid]

    await apply_region(test_region, region_document(test_region.user_prefix))
    await asyncio.sleep(0.5)
    replayed = await run_cli(test_region, "rejected", "replay", mid, "--operator", "op-2")
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1" in replayed.output
    receipt = await jgz.receipt_for(mid)
    assert receipt.body["status"] == "accepted"
    assert receipt.body["melding_ref"] == "R-1"
    assert await _rejected(test_region) == []
    [entry] = await db.fetch(
        "SELECT actor, detail FROM audit_log WHERE action = 'rejected_replayed'"
    )
    assert entry["actor"] == "op-2"
    assert entry["detail"] == {
        "queue": REJECTED_QUEUE,
        "message_id": mid,
        "sender": jgz.broker_user,
        "type": "melding.register",
    }


async def test_purge_asks_first_removes_for_good_and_is_audited(
    test_region: RegionUnderTest,
    pipeline: System,
    db: asyncpg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ingest = pipeline.runtimes[0]
    for n in range(3):  # no user_id: nobody to answer
        await ingest.publisher.publish(
            OutboundMessage(
                "vi.inbound", "melding.register", b"{}", message_type=None, message_id=f"anon-{n}"
            )
        )

    async def landed() -> bool:
        return await queued_messages(ingest, REJECTED_QUEUE) == 3

    await eventually(landed)
    cannot = await run_cli(test_region, "rejected", "replay", "anon-0")
    assert cannot.exit_code == 1 and "no user_id" in cannot.output

    declined = await run_cli(test_region, "rejected", "purge", "--all", input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert await queued_messages(ingest, REJECTED_QUEUE) == 3

    one = await run_cli(
        test_region, "rejected", "purge", "anon-1", "--operator", "op-3", input="y\n"
    )
    assert one.exit_code == 0 and "purged 1" in one.output, one.output
    assert sorted(i["message_id"] for i in await _rejected(test_region)) == ["anon-0", "anon-2"]

    monkeypatch.setattr("cli.parked.PROGRESS_FROM", 2)  # as if the queue were long
    rest = await run_cli(test_region, "rejected", "purge", "--all", "--yes", "--operator", "op-3")
    assert "purged 2" in rest.stdout
    assert "purging vi.rejected" in rest.stderr  # progress, kept off stdout
    assert await queued_messages(ingest, REJECTED_QUEUE) == 0
    audited = await db.fetch("SELECT actor, detail FROM audit_log WHERE action = 'rejected_purged'")
    assert sorted(r["detail"]["message_id"] for r in audited) == ["anon-0", "anon-1", "anon-2"]
    assert {r["actor"] for r in audited} == {"op-3"}
    assert all(r["detail"]["sender"] is None for r in audited)

    gone = await run_cli(test_region, "rejected", "purge", "anon-1", "--yes")
    assert gone.exit_code == 1 and "not found among rejected messages" in gone.output


async def test_replay_and_purge_need_a_selection(test_region: RegionUnderTest) -> None:
    for command in ("replay", "purge"):
        result = await run_cli(test_region, "rejected", command)
        assert result.exit_code == 2 and "--all" in result.output
