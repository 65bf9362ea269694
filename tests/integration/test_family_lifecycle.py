"""Family facts live and die with the youth (contract §8): purged on the 23rd
birthday, on death, on erasure and with the last melding; `subject export` shows them
as hashes; a move leaves them as they are."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient
from shared.pseudonym import Pseudonymizer
from tests.conftest import System
from tests.integration.test_family import PARENT, answer, family_body
from tests.integration.test_matching import mailboxes
from tests.support import RegionUnderTest, run_cli, valid_bsn

KEYS = Pseudonymizer("test-pseudonym-key")  # the key the test services run with


async def facts_count(db: asyncpg.Connection[Any]) -> int:
    return int(await db.fetchval("SELECT count(*) FROM family_facts"))


async def test_export_shows_hashes_and_a_move_keeps_the_facts(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    anna, bram = valid_bsn(9601), valid_bsn(9602)
    await box["school"].register("S-1", bsn=anna)
    await box["jeugdteam"].register("T-1", bsn=bram)
    await answer(box["brp"], anna, [PARENT], "0363200000123456")
    await answer(box["brp"], bram, [PARENT])
    await box["school"].notice("family.notice", "S-1")
    before = await db.fetchrow("SELECT parent_hashes, address_hash FROM family_facts LIMIT 1")

    moved = {
        "type": "person.moved",
        "bsn": anna,
        "municipality": "0599",
        "moved_at": "2026-11-30T10:00:00+01:00",
    }
    assert (await box["brp"].send(moved))["status"] == "accepted"
    await box["school"].notice("youth.moved", "S-1")
    after = await db.fetchrow("SELECT parent_hashes, address_hash FROM family_facts LIMIT 1")
    assert after == before

    result = await run_cli(test_region, "subject", "export", "--bsn", anna)
    assert result.exit_code == 0, result.output
    assert PARENT not in result.stdout and "0363200000123456" not in result.stdout
    doc = json.loads(result.stdout)
    assert doc["family_facts"]["parents"] == [KEYS.parent_by_bsn(PARENT).hex()]
    assert doc["family_facts"]["address"] == KEYS.address_by_bag_id("0363200000123456").hex()
    assert doc["family_lookup"] is None
    [match] = doc["family_matches"]
    assert match["melding_ref"] == "S-1" and match["relation"] == "parent"
    assert match["counterpart_organisation"] == "Jeugdteam Noord"
    assert "T-1" not in result.stdout


async def test_facts_go_with_death_erasure_and_the_last_melding(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    kids = [valid_bsn(9700 + i) for i in range(3)]
    for i, bsn in enumerate(kids):
        await box["school"].register(f"S-{i}", bsn=bsn)
        await answer(box["brp"], bsn, [PARENT])
    assert await facts_count(db) == 3

    dead = {"type": "person.deceased", "bsn": kids[0], "died_on": "2026-11-01"}
    assert (await box["brp"].send(dead))["status"] == "accepted"
    assert await facts_count(db) == 2
    erased = await run_cli(test_region, "subject", "erase", "--bsn", kids[1], "--yes")
    assert erased.exit_code == 0, erased.output
    assert await facts_count(db) == 1
    assert (await box["school"].withdraw("S-2", "unjustified"))["status"] == "accepted"
    assert await facts_count(db) == 0
    # Nothing at all is stored any more: new facts on them are unknown_person.
    refused = await box["brp"].send(family_body(kids[2], [PARENT]))
    assert [e["code"] for e in refused["errors"]] == ["unknown_person"]


async def test_facts_go_on_the_23rd_birthday(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(9801)
    soon = datetime.now(UTC).date() + timedelta(days=3)
    # 23 within 3 days (29 February has no twin 23 years before: the 28th then).
    birth = date(soon.year - 23, soon.month, soon.day if (soon.month, soon.day) != (2, 29) else 28)
    await box["school"].register("S-1", bsn=bsn, birth_date=birth.isoformat())
    await answer(box["brp"], bsn, [PARENT])
    assert await facts_count(db) == 1
    later = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    swept = await run_cli(test_region, "retention", "run", "--now", later, "--yes")
    assert swept.exit_code == 0, swept.output
    assert await facts_count(db) == 0
    assert await db.fetchval("SELECT count(*) FROM youth") == 0
