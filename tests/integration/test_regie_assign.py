"""regie.assign through the running pipeline (contract §9): the portal's login speaks
for a municipality's match coordinator with x-vi-coordinator and x-vi-actor, and the
coordinator gives (or moves) the lead of a match. Every partner in the match hears it
with regie.notice, the new lead's reporter and the coordinator get an e-mail, the
receipt is in partner.portal, and every refusal has its own code."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.retention.sweep import Sweep
from shared.contract.portal import (
    ACTOR_HEADER,
    COORDINATOR_HEADER,
    ON_BEHALF_OF_HEADER,
)
from shared.partner_client import PartnerClient
from shared.provisioning import with_login
from tests.conftest import PORTAL_SCHOOL, System
from tests.integration.test_matching import Mailbox
from tests.integration.test_portal_channel import PortalDesk
from tests.integration.test_regie import (
    Clock,
    mails_with_subject,
    matcher_with_clock,
    wait_for_mails,
)
from tests.support import PARTNER_PASSWORD, RegionUnderTest, valid_bsn

ACTOR = "coord-42"
AMQP_PARTNERS = ("school", "jeugdteam", "huisarts")


@pytest.fixture
async def pipeline(portal_region: RegionUnderTest, system: System) -> System:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    return system


@pytest.fixture
async def clients(portal_region: RegionUnderTest) -> AsyncIterator[dict[str, PartnerClient]]:
    """The portal's login reading partner.portal and partner.linde, and three
    partners' own systems."""
    region = portal_region.region
    assert region.portal is not None
    portal_url = with_login(
        portal_region.settings.amqp_url,
        user=region.portal.broker_user,
        password=PARTNER_PASSWORD,
        vhost=portal_region.vhost,
    )
    made = {
        "portal": PartnerClient(portal_url, "portal", region.portal.broker_user),
        PORTAL_SCHOOL: PartnerClient(portal_url, PORTAL_SCHOOL, region.portal.broker_user),
        **{
            pid: PartnerClient(
                portal_region.partner_url(pid), pid, region.partners_by_id[pid].own_broker_user
            )
            for pid in AMQP_PARTNERS
        },
    }
    for client in made.values():
        await client.start()
    try:
        yield made
    finally:
        for client in made.values():
            await client.close()


def coordinator(client: PartnerClient, code: str = "0363") -> PortalDesk:
    return PortalDesk(client, {COORDINATOR_HEADER: code, ACTOR_HEADER: ACTOR})


def assign(match_id: str, partner: str) -> dict[str, Any]:
    return {"type": "regie.assign", "match_id": match_id, "partner": partner}


def errors(receipt: dict[str, Any]) -> list[tuple[str, str]]:
    assert receipt["status"] == "rejected", receipt
    return [(e["code"], e["loc"]) for e in receipt["errors"]]


async def match_of_three(
    clients: dict[str, PartnerClient], bsn: str, municipality: str = "0363"
) -> tuple[str, dict[str, Mailbox]]:
    """school, jeugdteam and the portal school De Linde on one youth: the match_id,
    and the mailboxes of the three (their match notices taken)."""
    box = {pid: Mailbox(clients[pid]) for pid in ("school", "jeugdteam")}
    box[PORTAL_SCHOOL] = PortalDesk(
        clients[PORTAL_SCHOOL], {ON_BEHALF_OF_HEADER: PORTAL_SCHOOL, ACTOR_HEADER: "user-1"}
    )
    refs = {"school": "S-1", "jeugdteam": "T-1", PORTAL_SCHOOL: "L-1"}
    for pid, ref in refs.items():
        receipt = await box[pid].register(ref, bsn=bsn, municipality=municipality)
        assert receipt["status"] == "accepted", receipt
    match_id = str((await box[PORTAL_SCHOOL].notice("match.notice", "L-1")).body["match_id"])
    for pid, ref in refs.items():
        if pid != PORTAL_SCHOOL:  # each heard of the match, and of the last to join
            for _ in range(2):
                await box[pid].notice("match.notice", ref)
    return match_id, box


async def lead_of(db: asyncpg.Connection[Any], match_id: str) -> str | None:
    value = await db.fetchval(
        """SELECT m.partner_id FROM match_group g LEFT JOIN melding m ON m.id = g.lead_melding_id
           WHERE g.id = $1""",
        uuid.UUID(match_id),
    )
    return str(value) if value is not None else None


async def test_the_coordinator_assigns_the_lead_and_moves_it_everyone_hears_it(
    portal_region: RegionUnderTest,
    pipeline: System,
    clients: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    match_id, box = await match_of_three(clients, valid_bsn(301))
    desk = coordinator(clients["portal"])
    refs = {"school": "S-1", "jeugdteam": "T-1", PORTAL_SCHOOL: "L-1"}

    sent = await clients["portal"].send(assign(match_id, "jeugdteam"), headers=desk.headers)
    receipt = await desk.receipt(sent)
    assert receipt["status"] == "accepted" and receipt["errors"] == []
    assert receipt["melding_ref"] is None
    for pid, ref in refs.items():
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["match_id"] == match_id and notice["escalated"] is False
        assert notice["lead"]["partner"] == "jeugdteam"
        assert notice["lead"]["reporter"]["email"] == "contact@jeugdteam.example"
    assert await lead_of(db, match_id) == "jeugdteam"
    [to_lead] = await wait_for_mails(portal_region, "U heeft de regie gekregen", 1)
    assert str(to_lead["To"]) == "contact@jeugdteam.example"
    text = to_lead.get_content()
    assert "T-1" in text and "Amsterdam" in text and "contact@school.example" in text
    assert "S-1" not in text  # another partner's ref is its own business
    [to_coordinator] = await wait_for_mails(portal_region, "Regie vastgelegd", 1)
    assert str(to_coordinator["To"]) == "regie@amsterdam.example"

    # Moving it: the lead goes to the portal school, although jeugdteam has it.
    receipt = await desk.send(assign(match_id, PORTAL_SCHOOL))
    assert receipt["status"] == "accepted"
    for pid, ref in refs.items():
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["lead"]["partner"] == PORTAL_SCHOOL
    assert await lead_of(db, match_id) == PORTAL_SCHOOL
    await wait_for_mails(portal_region, "U heeft de regie gekregen", 2)
    await wait_for_mails(portal_region, "Regie vastgelegd", 2)

    # The lead assigned again to the one that has it: accepted, nobody told again.
    assert (await desk.send(assign(match_id, PORTAL_SCHOOL)))["status"] == "accepted"
    for pid in refs:
        assert [m.type for m in await box[pid].rest()] == []
    assert len(mails_with_subject(portal_region, "U heeft de regie gekregen")) == 2

    rows = await db.fetch(
        """SELECT actor, portal_user, melding_ref, detail FROM audit_log
           WHERE action = 'lead_assigned' ORDER BY id"""
    )
    assert [(r["actor"], r["portal_user"], r["melding_ref"]) for r in rows] == [
        ("coordinator:0363", ACTOR, "T-1"),
        ("coordinator:0363", ACTOR, "L-1"),
    ]
    assert [r["detail"] for r in rows] == [
        {"partner": "jeugdteam", "previous": None},
        {"partner": PORTAL_SCHOOL, "previous": "jeugdteam"},
    ]
    assert await Mailbox(clients["portal"]).rest() == []


async def test_a_resent_assignment_is_a_duplicate_and_changes_nothing(
    portal_region: RegionUnderTest,
    pipeline: System,
    clients: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    match_id, box = await match_of_three(clients, valid_bsn(302))
    desk = coordinator(clients["portal"])
    for status in ("accepted", "duplicate"):
        await clients["portal"].send(
            assign(match_id, "school"), message_id="assign-1", headers=desk.headers
        )
        assert (await desk.receipt("assign-1"))["status"] == status
    assert (await box["school"].notice("regie.notice", "S-1")).body["lead"]["partner"] == "school"
    assert [m.type for m in await box["school"].rest()] == []
    await wait_for_mails(portal_region, "U heeft de regie gekregen", 1)
    count = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'lead_assigned'")
    assert count == 1


async def test_every_refusal_has_its_code_and_changes_nothing(
    portal_region: RegionUnderTest,
    pipeline: System,
    clients: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    match_id, box = await match_of_three(clients, valid_bsn(303))
    portal = clients["portal"]
    desk = coordinator(portal)
    body = assign(match_id, "jeugdteam")

    async def as_portal(headers: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
        """Sent with the portal's login: the answer is in partner.portal."""
        return await desk.receipt(await portal.send(message, headers=headers))

    # No live match with that id.
    assert errors(await desk.send(assign(str(uuid.uuid4()), "jeugdteam"))) == [
        ("unknown_match", "match_id")
    ]
    assert errors(await desk.send(assign("m-1", "jeugdteam"))) == [("unknown_match", "match_id")]
    assert errors(await desk.send(assign(match_id.upper(), "jeugdteam"))) == [
        ("unknown_match", "match_id")
    ]
    # The coordinator of another municipality of the region.
    elsewhere = {COORDINATOR_HEADER: "0599", ACTOR_HEADER: ACTOR}
    assert errors(await as_portal(elsewhere, body)) == [("not_authorized", COORDINATOR_HEADER)]
    # A partner without an active melding in the match, or none at all.
    assert errors(await desk.send(assign(match_id, "huisarts"))) == [("not_active", "partner")]
    assert errors(await desk.send(assign(match_id, "nobody"))) == [("not_active", "partner")]
    # A header that names no coordinator of this region.
    for code in ("9999", "363", "03630", ""):
        unknown = {COORDINATOR_HEADER: code, ACTOR_HEADER: ACTOR}
        assert errors(await as_portal(unknown, body)) == [("not_authorized", COORDINATOR_HEADER)], (
            code
        )
    # The portal acting for a portal partner (answered in that partner's mailbox), or
    # for nobody.
    assert errors(await box[PORTAL_SCHOOL].send(body)) == [("not_authorized", "type")]
    assert errors(await as_portal({ACTOR_HEADER: ACTOR}, body)) == [
        ("not_authorized", ON_BEHALF_OF_HEADER)
    ]
    # Both headers at once, or the coordinator without an actor.
    both = {**desk.headers, ON_BEHALF_OF_HEADER: PORTAL_SCHOOL}
    assert errors(await as_portal(both, body)) == [("not_authorized", COORDINATOR_HEADER)]
    assert errors(await as_portal({COORDINATOR_HEADER: "0363"}, body)) == [
        ("not_authorized", ACTOR_HEADER)
    ]
    # A partner's own system, with or without the coordinator's header.
    school = box["school"]
    assert errors(await school.send(body)) == [("not_authorized", "type")]
    with_header = await school.receipt(await school.client.send(body, headers=desk.headers))
    assert errors(with_header) == [("not_authorized", COORDINATOR_HEADER)]

    assert await lead_of(db, match_id) is None
    for pid in ("school", "jeugdteam", PORTAL_SCHOOL):
        assert [m.type for m in await box[pid].rest()] == []
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'lead_assigned'") == 0

    # A match that ended is unknown: only one active melding remains.
    assert (await box["school"].withdraw("S-1"))["status"] == "accepted"
    assert (await box["jeugdteam"].withdraw("T-1"))["status"] == "accepted"
    assert errors(await desk.send(assign(match_id, PORTAL_SCHOOL))) == [
        ("unknown_match", "match_id")
    ]


async def test_an_escalated_match_gets_its_lead_from_the_coordinator(
    portal_region: RegionUnderTest,
    system: System,
    clients: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    """The lead rules after an assignment: no escalation while the lead is set; when
    the lead's melding ends the lead is cleared and a new deadline period starts."""
    t0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    clock = Clock(t0)
    await system.start("ingest")
    matcher = await system.start("matcher", setup=matcher_with_clock(clock))
    await system.start("notifier")
    sweep = Sweep(matcher.pool, matcher.outbox, await matcher.region.get(), matcher.pseudonyms)
    match_id, box = await match_of_three(clients, valid_bsn(304))
    refs = {"school": "S-1", "jeugdteam": "T-1", PORTAL_SCHOOL: "L-1"}
    assert (await sweep.run(t0 + timedelta(days=14))).counts.get("lead_escalated") == 1
    for pid, ref in refs.items():
        assert (await box[pid].notice("regie.notice", ref)).body["escalated"] is True

    clock.now = t0 + timedelta(days=15)
    desk = coordinator(clients["portal"])
    assert (await desk.send(assign(match_id, "school")))["status"] == "accepted"
    for pid, ref in refs.items():
        notice = (await box[pid].notice("regie.notice", ref)).body
        assert notice["lead"]["partner"] == "school" and notice["escalated"] is False
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=60))).counts

    clock.now = t0 + timedelta(days=20)
    assert (await box["school"].withdraw("S-1"))["status"] == "accepted"
    for pid in ("jeugdteam", PORTAL_SCHOOL):
        assert (await box[pid].notice("regie.notice", refs[pid])).body["lead"] is None
    assert await db.fetchval("SELECT lead_needed_since FROM match_group") == clock.now
    assert "lead_escalated" not in (await sweep.run(t0 + timedelta(days=33))).counts
    assert (await sweep.run(t0 + timedelta(days=34))).counts.get("lead_escalated") == 1
