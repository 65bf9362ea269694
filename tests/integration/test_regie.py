"""The lead (regie): claims, automatic assignment by sector priority, clearing when the
lead's melding ends, escalation by the retention sweep, and claims racing on two
matcher replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from services.matcher.handler import command_codec
from services.retention.app import count_overdue_escalations
from services.retention.rules import ESCALATION_RULE
from services.retention.sweep import Sweep
from shared.amqp.topology import MATCHER_QUEUE
from shared.clock import utcnow
from shared.envelopes import Command
from shared.lanes import Lane
from shared.partner_client import PartnerClient, Received
from shared.service import Runtime
from tests.conftest import System, apply_region
from tests.integration.test_matching import Mailbox, codes, mailboxes
from tests.support import RegionUnderTest, eventually, mails, matcher_of, region_document, valid_bsn


def mails_with_subject(region: RegionUnderTest, start: str) -> list[EmailMessage]:
    return [m for m in mails(region) if str(m["Subject"]).startswith(start)]


async def wait_for_mails(region: RegionUnderTest, start: str, count: int) -> list[EmailMessage]:
    async def enough() -> bool:
        return len(mails_with_subject(region, start)) >= count

    await eventually(enough)
    await asyncio.sleep(0.2)  # a moment for any extra one to show up
    found = mails_with_subject(region, start)
    assert len(found) == count, [m["Subject"] for m in found]
    return found


async def match_of_three(box: dict[str, Mailbox], bsn: str) -> str:
    """school, jeugdteam and jgz on one youth; returns the match_id."""
    await box["school"].register("S-1", bsn=bsn)
    await box["jeugdteam"].register("T-1", bsn=bsn)
    await box["jgz"].register("G-1", bsn=bsn)
    match_id = str((await box["jgz"].notice("match.notice", "G-1")).body["match_id"])
    for pid, ref in (
        ("school", "S-1"),
        ("school", "S-1"),
        ("jeugdteam", "T-1"),
        ("jeugdteam", "T-1"),
    ):
        await box[pid].notice("match.notice", ref)
    return match_id


async def test_first_claim_wins_everyone_is_told_and_the_coordinator_mailed(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    match_id = await match_of_three(box, valid_bsn(201))

    assert (await box["jeugdteam"].claim("T-1"))["status"] == "accepted"
    for pid, ref in (("school", "S-1"), ("jeugdteam", "T-1"), ("jgz", "G-1")):
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["match_id"] == match_id
        assert notice["escalated"] is False
        assert notice["lead"] == {
            "partner": "jeugdteam",
            "organisation": "Jeugdteam Noord",
            "reporter": {
                "name": "Contact jeugdteam",
                "email": "contact@jeugdteam.example",
                "phone": "+31201234567",
            },
        }
    [mail] = await wait_for_mails(test_region, "Regie vastgelegd", 1)
    assert mail["To"] == "regie@amsterdam.example"
    assert "heeft Jeugdteam Noord de regie" in mail.get_content()

    taken = await box["school"].claim("S-1")
    assert taken["status"] == "rejected" and codes(taken) == ["regie_taken"]
    # Claiming again what one already has changes nothing and tells nobody.
    assert (await box["jeugdteam"].claim("T-1"))["status"] == "accepted"
    for pid in ("school", "jeugdteam", "jgz"):
        assert await box[pid].rest(0.3) == [], pid
    lead = await db.fetchval(
        "SELECT m.melding_ref FROM match_group g JOIN melding m ON m.id = g.lead_melding_id"
    )
    assert lead == "T-1"
    await wait_for_mails(test_region, "Regie vastgelegd", 1)


async def test_claims_that_cannot_be_granted(
    pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(202)
    await box["school"].register("S-1", bsn=bsn)
    assert codes(await box["school"].claim("S-1")) == ["no_match"]  # alone
    assert codes(await box["school"].claim("NOPE")) == ["unknown_melding"]

    await box["jeugdteam"].register("T-1", bsn=bsn)
    # Another partner's ref is simply unknown.
    assert codes(await box["school"].claim("T-1")) == ["unknown_melding"]
    await box["jeugdteam"].withdraw("T-1")
    assert codes(await box["jeugdteam"].claim("T-1")) == ["not_active"]
    # The group ended with the withdraw: the remaining melding is in no match.
    assert codes(await box["school"].claim("S-1")) == ["no_match"]

    # Only archived counterparts: a match was signalled, but no lead can be claimed.
    other = valid_bsn(203)
    await box["school"].register("S-2", bsn=other)
    await box["school"].withdraw("S-2")
    await box["jgz"].register("G-1", bsn=other)
    await box["jgz"].notice("match.notice", "G-1")
    assert codes(await box["jgz"].claim("G-1")) == ["no_match"]


async def test_regie_priority_assigns_the_lead_when_the_match_forms_and_never_moves_it(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    await apply_region(
        test_region, region_document(test_region.user_prefix, regie_priority=["jeugdhulp", "jgz"])
    )
    await asyncio.sleep(0.5)  # the services re-read the config every 0.2 s here
    box = mailboxes(partners)
    bsn = valid_bsn(204)
    await box["school"].register("S-1", bsn=bsn)
    await box["jgz"].register("G-1", bsn=bsn)

    # No jeugdhulp in the match: the first sector of the list present is jgz.
    newcomer = (await box["jgz"].notice("match.notice", "G-1")).body
    assert newcomer["lead"]["partner"] == "jgz"
    assert (await box["school"].notice("match.notice", "S-1")).body["lead"]["partner"] == "jgz"
    for pid, ref in (("school", "S-1"), ("jgz", "G-1")):
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["lead"]["partner"] == "jgz" and notice["match_id"] == newcomer["match_id"]
    await wait_for_mails(test_region, "Regie vastgelegd", 1)

    # Jeugdhulp joins, first on the list, but an existing lead is never moved.
    await box["jeugdteam"].register("T-1", bsn=bsn)
    joined = (await box["jeugdteam"].notice("match.notice", "T-1")).body
    assert joined["lead"]["partner"] == "jgz"
    for pid, ref in (("school", "S-1"), ("jgz", "G-1")):
        await box[pid].notice("match.notice", ref)
    for pid in ("school", "jeugdteam", "jgz"):
        assert [m.type for m in await box[pid].rest(0.3)] == [], pid
    assert codes(await box["jeugdteam"].claim("T-1")) == ["regie_taken"]
    # Every match e-mail (formed: school and jgz; joined: all three) names the lead
    # instead of asking the reporters to agree on one.
    matched = await wait_for_mails(test_region, "Match in de Verwijsindex", 5)
    texts = {(str(m["Subject"]).rsplit(" ", 1)[1], m.get_content()) for m in matched}
    assert all("wie de regie neemt" not in text for _, text in texts)
    for ref, text in texts:
        if ref == "G-1":
            assert "Uw organisatie heeft de regie in deze match." in text
        else:
            assert "GGD Jeugdgezondheidszorg heeft de regie in deze match." in text
    assert {ref for ref, _ in texts} == {"S-1", "G-1", "T-1"}

    # The lead's melding ends: the lead is assigned again by the same rule.
    await box["jgz"].withdraw("G-1")
    for pid, ref in (("school", "S-1"), ("jeugdteam", "T-1")):
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["lead"]["partner"] == "jeugdteam"
        assert notice["match_id"] == newcomer["match_id"]
    assert await box["jgz"].rest(0.3) == []
    await wait_for_mails(test_region, "Regie vastgelegd", 2)
    lead = await db.fetchval(
        "SELECT m.partner_id FROM match_group g JOIN melding m ON m.id = g.lead_melding_id"
    )
    assert lead == "jeugdteam"


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def matcher_with_clock(clock: Callable[[], datetime]) -> Callable[[Runtime], Any]:
    async def setup(runtime: Runtime) -> None:
        runtime.consume(
            MATCHER_QUEUE, command_codec(Lane.LIVE), matcher_of(runtime, clock), batch_size=1
        )

    return setup


async def test_lead_cleared_when_its_melding_ends_and_escalation_once_per_period(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    # The matcher's clock: noon, so that day counts are not shifted by a DST change.
    t0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    clock = Clock(t0)
    await system.start("ingest")
    matcher = await system.start("matcher", setup=matcher_with_clock(clock))
    await system.start("notifier")
    region = await matcher.region.get()
    sweep = Sweep(matcher.pool, matcher.outbox, region, matcher.pseudonyms)
    box = mailboxes(partners)
    match_id = await match_of_three(box, valid_bsn(205))

    # Thirteen days without a lead: not yet. Fourteen: escalated, once.
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=13))).counts
    # What the retention service reports as overdue (vi_lead_escalations_overdue).
    assert await sweep.still_due(ESCALATION_RULE, t0 + timedelta(days=13)) == 0
    assert await sweep.still_due(ESCALATION_RULE, t0 + timedelta(days=14)) == 1
    report = await sweep.run(t0 + timedelta(days=14))
    assert report.counts.get("lead_escalated") == 1
    assert await sweep.still_due(ESCALATION_RULE, t0 + timedelta(days=14)) == 0
    for pid, ref in (("school", "S-1"), ("jeugdteam", "T-1"), ("jgz", "G-1")):
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice == {
            "type": "regie.notice",
            "match_id": match_id,
            "melding_ref": ref,
            "lead": None,
            "escalated": True,
        }
    [escalation] = await wait_for_mails(test_region, "Geen regie in match", 1)
    assert escalation["To"] == "regie@amsterdam.example"
    assert match_id in escalation.get_content()
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=15))).counts
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=40))).counts
    for pid in ("school", "jeugdteam", "jgz"):
        # (The same sweeps remind each reporter to inform the family: not our concern.)
        assert [m for m in await box[pid].rest(0.3) if m.type != "inform.reminder"] == [], pid

    # A lead is taken on day 16 and its melding ends on day 20: the lead is cleared,
    # everyone left in the match is told, and a new deadline period starts that day.
    clock.now = t0 + timedelta(days=16)
    assert (await box["jeugdteam"].claim("T-1"))["status"] == "accepted"
    for pid, ref in (("school", "S-1"), ("jeugdteam", "T-1"), ("jgz", "G-1")):
        assert (await box[pid].notice("regie.notice", ref)).body["lead"]["partner"] == "jeugdteam"
    clock.now = t0 + timedelta(days=20)
    assert (await box["jeugdteam"].withdraw("T-1"))["status"] == "accepted"
    for pid, ref in (("school", "S-1"), ("jgz", "G-1")):
        cleared = (await box[pid].notice("regie.notice", ref)).body
        assert cleared["lead"] is None and cleared["escalated"] is False
        assert cleared["match_id"] == match_id
    assert await box["jeugdteam"].rest(0.3) == []
    since = await db.fetchval("SELECT lead_needed_since FROM match_group")
    assert since == clock.now

    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=33))).counts
    assert (await sweep.run(t0 + timedelta(days=34))).counts.get("lead_escalated") == 1
    for pid, ref in (("school", "S-1"), ("jgz", "G-1")):
        assert (await box[pid].notice("regie.notice", ref)).body["escalated"] is True
    await wait_for_mails(test_region, "Geen regie in match", 2)
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=35))).counts
    audit = await db.fetch("SELECT actor, match_id FROM audit_log WHERE action = 'lead_escalated'")
    assert [(r["actor"], str(r["match_id"])) for r in audit] == [("system", match_id)] * 2


async def test_the_retention_service_counts_matches_past_the_lead_deadline(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    await system.start("ingest")
    matcher = await system.start("matcher")
    await system.start("notifier")
    await match_of_three(mailboxes(partners), valid_bsn(206))
    await db.execute("UPDATE match_group SET lead_needed_since = now() - interval '20 days'")

    def overdue() -> float | None:
        return REGISTRY.get_sample_value("vi_lead_escalations_overdue", {"service": "matcher"})

    # What VILeadEscalationOverdue reads: one before the sweep, none after it.
    region = await matcher.region.get()
    sweep = Sweep(matcher.pool, matcher.outbox, region, matcher.pseudonyms)
    await count_overdue_escalations(matcher, sweep)
    assert overdue() == 1
    await sweep.run(utcnow())
    await count_overdue_escalations(matcher, sweep)
    assert overdue() == 0


async def test_two_claims_at_once_on_two_replicas_exactly_one_wins(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    handled: dict[int, int] = {0: 0, 1: 0}

    def counting(replica: int) -> Callable[[Runtime], Any]:
        async def setup(runtime: Runtime) -> None:
            real = matcher_of(runtime)

            async def handler(commands: Sequence[Command]) -> None:
                handled[replica] += 1
                await real(commands)

            runtime.consume(MATCHER_QUEUE, command_codec(Lane.LIVE), handler, batch_size=1)

        return setup

    await system.start("ingest")
    await system.start("matcher", setup=counting(0))
    await system.start("matcher", setup=counting(1))
    await system.start("notifier")
    school, team = Mailbox(partners["school"]), Mailbox(partners["jeugdteam"])
    youths = 20
    await asyncio.gather(
        *(school.register(f"S-{i}", bsn=valid_bsn(300 + i)) for i in range(youths)),
        *(team.register(f"T-{i}", bsn=valid_bsn(300 + i)) for i in range(youths)),
    )
    claims = await asyncio.gather(
        *(
            box.claim(f"{prefix}-{i}")
            for i in range(youths)
            for box, prefix in ((school, "S"), (team, "T"))
        )
    )
    winners: dict[int, str] = {}
    for i in range(youths):
        pair = claims[2 * i : 2 * i + 2]
        statuses = sorted(c["status"] for c in pair)
        assert statuses == ["accepted", "rejected"], pair
        [loser] = [c for c in pair if c["status"] == "rejected"]
        assert codes(loser) == ["regie_taken"]
        [winner] = [c for c in pair if c["status"] == "accepted"]
        winners[i] = winner["melding_ref"]
    assert handled[0] > 0 and handled[1] > 0  # both replicas did part of the work
    leads = await db.fetch(
        "SELECT m.melding_ref FROM match_group g JOIN melding m ON m.id = g.lead_melding_id"
    )
    assert sorted(r["melding_ref"] for r in leads) == sorted(winners.values())

    # Each partner hears of each youth's lead exactly once, and it names the winner.
    def lead_notice(message: Received) -> bool:
        return message.type == "regie.notice"

    for box in (school, team):
        # All of them (on a busy machine they may come slowly), then anything extra.
        got = [await box.get(lead_notice, timeout=30) for _ in range(youths)]
        got += [m for m in [*box.kept, *await box.client.quiet(1.0)] if lead_notice(m)]
        assert len(got) == youths
        for notice in got:
            i = int(notice.body["melding_ref"].split("-")[1])
            assert notice.body["lead"]["partner"] == (
                "school" if winners[i].startswith("S") else "jeugdteam"
            )
