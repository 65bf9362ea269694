"""`match.ended` goes to every partner whose active melding remains in a match that
ended, and to nobody whose melding goes with it.

Each way a match can end has its test: a withdraw (`test_lifecycle.py`, also of the
lead's melding), the 2-year expiry (`test_retention.py`, and here when members expire
together), the 23rd birthday (`test_retention.py`), death (`test_lifecycle.py`),
erasure (`test_cli_ops.py`) and a partner's retirement (`test_retired_partners.py`).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.integration.lifecycle_support import (
    at,
    boxes,
    day,
    melding_row,
    register,
    rest_of_all,
    start_lifecycle,
    youth_id_of,
)
from tests.support import valid_bsn

REMINDERS = ("inform.reminder",)


async def test_members_expiring_together_are_not_told_their_match_ended(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """Two meldingen of a match reach their 2-year limit on the same day: the match
    ends once, and neither owner is told `match.ended` about a match its own melding
    leaves; each hears only that its melding expired."""
    lc = await start_lifecycle(system)
    box = boxes(partners)
    school, team = box["school"], box["jeugdteam"]
    bsn = valid_bsn(720)
    await school.accepted(register("S-1", bsn, reported_at="2024-03-10T09:00:00+01:00"))
    await team.accepted(register("T-1", bsn, reported_at="2024-03-10T15:00:00+01:00"))
    await rest_of_all(school, team, seconds=0.2)
    youth_id = await youth_id_of(db, "school", "S-1")

    report = await lc.sweep(at("2026-03-10T09:00:00+01:00"))
    assert report.counts.get("expired") == 2
    for partner, ref in ((school, "S-1"), (team, "T-1")):
        ended = (await partner.take("melding.ended")).body
        assert ended == {"type": "melding.ended", "melding_ref": ref, "reason": "expired"}
    assert await rest_of_all(school, team, ignore=REMINDERS) == {"school": [], "jeugdteam": []}
    group = await db.fetchrow("SELECT ended_at FROM match_group WHERE youth_id = $1", youth_id)
    assert group is not None and group["ended_at"] is not None
    for partner_id, ref in (("school", "S-1"), ("jeugdteam", "T-1")):
        row = await melding_row(db, partner_id, ref)
        assert row["state"] == "archived" and row["purge_on"] == day("2031-03-10")


async def test_a_late_sweep_ends_due_members_together_and_tells_the_one_that_remains(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """A sweep that runs late finds two members of a match of three past their limit
    (on different days): they end together, the third hears `match.ended` once, and
    each archive term runs from its own expiry date."""
    lc = await start_lifecycle(system)
    box = boxes(partners)
    school, team, jgz = box["school"], box["jeugdteam"], box["jgz"]
    bsn = valid_bsn(721)
    await school.accepted(register("S-1", bsn, reported_at="2024-03-10T09:00:00+01:00"))
    await team.accepted(register("T-1", bsn, reported_at="2024-03-20T09:00:00+01:00"))
    await jgz.accepted(register("J-1", bsn, reported_at="2025-01-10T09:00:00+01:00"))
    await jgz.accepted({"type": "regie.claim", "melding_ref": "J-1"})
    await rest_of_all(school, team, jgz, seconds=0.3)
    match_id = await db.fetchval("SELECT id FROM match_group")

    report = await lc.sweep(at("2026-04-01T09:00:00+02:00"))
    assert report.counts.get("expired") == 2
    for partner, ref in ((school, "S-1"), (team, "T-1")):
        ended = (await partner.take("melding.ended")).body
        assert ended == {"type": "melding.ended", "melding_ref": ref, "reason": "expired"}
    ended = (await jgz.take("match.ended")).body
    assert ended == {"type": "match.ended", "match_id": str(match_id), "melding_ref": "J-1"}
    quiet = await rest_of_all(school, team, jgz, ignore=REMINDERS)
    assert quiet == {"school": [], "jeugdteam": [], "jgz": []}
    assert (await melding_row(db, "school", "S-1"))["purge_on"] == day("2031-03-10")
    assert (await melding_row(db, "jeugdteam", "T-1"))["purge_on"] == day("2031-03-20")
    assert (await melding_row(db, "jgz", "J-1"))["state"] == "active"
