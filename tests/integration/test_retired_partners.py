"""Partners that leave the region (`retired = true`) and partners the config no longer
names: what happens to their meldingen, their messages and their mailbox."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.amqp.topology import MATCHER_QUEUE, NOTIFIER_QUEUE, parked_queue
from shared.partner_client import PartnerClient
from tests.conftest import System, apply_region
from tests.integration.lifecycle_support import (
    boxes,
    register,
    start_lifecycle,
)
from tests.support import RegionUnderTest, eventually, queued_messages, region_document, valid_bsn

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
