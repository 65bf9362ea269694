"""The portal channel through the running pipeline (contract §9): the portal's login
publishes for partners on channel "portal" with x-vi-on-behalf-of and x-vi-actor;
ingest refuses every other use of those headers with `not_authorized`, answers the
partner acted for or else the portal's own mailbox, and the actor reaches the audit
log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared.contract.portal import ACTOR_HEADER, ON_BEHALF_OF_HEADER
from shared.partner_client import PartnerClient
from shared.provisioning import with_login
from tests.conftest import PORTAL_SCHOOL, System, apply_region
from tests.integration.test_matching import Mailbox
from tests.support import (
    PARTNER_PASSWORD,
    RegionUnderTest,
    eventually,
    register_body,
    run_cli,
    valid_bsn,
)

ACTOR = "user-7f3a"


class PortalDesk(Mailbox):
    """The portal acting for one partner: its login, with that partner's mailbox (or
    its own, partner.portal) and the given headers on every message."""

    def __init__(self, client: PartnerClient, headers: dict[str, Any]) -> None:
        super().__init__(client)
        self.headers = headers

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.receipt(await self.client.send(body, headers=self.headers))


@pytest.fixture
async def portal_pipeline(portal_region: RegionUnderTest, system: System) -> System:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    return system


@pytest.fixture
async def clients(
    portal_region: RegionUnderTest, portal_pipeline: System
) -> AsyncIterator[dict[str, PartnerClient]]:
    """The portal's login reading partner.linde and partner.portal, and two partners'
    own systems."""
    region = portal_region.region
    assert region.portal is not None
    portal_url = with_login(
        portal_region.settings.amqp_url,
        user=region.portal.broker_user,
        password=PARTNER_PASSWORD,
        vhost=portal_region.vhost,
    )
    made = {
        PORTAL_SCHOOL: PartnerClient(portal_url, PORTAL_SCHOOL, region.portal.broker_user),
        "portal": PartnerClient(portal_url, "portal", region.portal.broker_user),
        **{
            pid: PartnerClient(
                portal_region.partner_url(pid), pid, region.partners_by_id[pid].own_broker_user
            )
            for pid in ("school", "jeugdteam")
        },
    }
    for client in made.values():
        await client.start()
    try:
        yield made
    finally:
        for client in made.values():
            await client.close()


def _as_portal(acts_for: str | None = PORTAL_SCHOOL, actor: str | None = ACTOR) -> dict[str, Any]:
    headers = {}
    if acts_for is not None:
        headers[ON_BEHALF_OF_HEADER] = acts_for
    if actor is not None:
        headers[ACTOR_HEADER] = actor
    return headers


def _refused(receipt: dict[str, Any], loc: str) -> None:
    assert receipt["status"] == "rejected", receipt
    assert [(e["code"], e["loc"]) for e in receipt["errors"]] == [("not_authorized", loc)]


async def _audit(db: asyncpg.Connection[Any], action: str) -> list[tuple[str, str | None]]:
    rows = await db.fetch(
        "SELECT actor, portal_user FROM audit_log WHERE action = $1 ORDER BY id", action
    )
    return [(r["actor"], r["portal_user"]) for r in rows]


async def test_a_portal_school_and_a_linked_team_match_and_each_hears_it_in_its_own_mailbox(
    clients: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school = PortalDesk(clients[PORTAL_SCHOOL], _as_portal())
    portal_own = Mailbox(clients["portal"])
    team = Mailbox(clients["jeugdteam"])
    youth = valid_bsn(4242)

    receipt = await school.register("L-1", bsn=youth)
    assert receipt["status"] == "accepted" and receipt["melding_ref"] == "L-1"
    assert (await team.register("T-1", bsn=youth))["status"] == "accepted"

    told_school = (await school.notice("match.notice", "L-1")).body
    told_team = (await team.notice("match.notice", "T-1")).body
    assert [c["partner"] for c in told_school["counterparts"]] == ["jeugdteam"]
    assert [c["partner"] for c in told_team["counterparts"]] == [PORTAL_SCHOOL]
    assert told_team["counterparts"][0]["organisation"] == "Basisschool De Linde"

    assert (await school.claim("L-1"))["status"] == "accepted"
    assert (await school.withdraw("L-1"))["status"] == "accepted"
    # The actor is recorded with every action taken through the portal, and only there.
    assert await _audit(db, "registered") == [(PORTAL_SCHOOL, ACTOR), ("jeugdteam", None)]
    assert await _audit(db, "lead_claimed") == [(PORTAL_SCHOOL, ACTOR)]
    assert await _audit(db, "archived") == [(PORTAL_SCHOOL, ACTOR)]
    assert await portal_own.rest() == []  # all of it went to partner.linde


async def test_the_portal_without_a_partner_it_acts_for_is_answered_in_its_own_mailbox(
    clients: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    own = clients["portal"]
    school = Mailbox(clients[PORTAL_SCHOOL])
    amqp_school = Mailbox(clients["school"])
    cases = {
        "no header": _as_portal(acts_for=None),
        "a partner with its own link": _as_portal(acts_for="school"),
        "no such partner": _as_portal(acts_for="nobody"),
        "the portal itself": _as_portal(acts_for="portal"),
    }
    for case, headers in cases.items():
        desk = PortalDesk(own, headers)
        receipt = await desk.register(f"P-{len(case)}", bsn=valid_bsn(7))
        _refused(receipt, ON_BEHALF_OF_HEADER)
    # A coordinator's regie.assign needs x-vi-coordinator instead: without either
    # header it is refused as well (tests/integration/test_regie_assign.py).
    assign = {"type": "regie.assign", "match_id": "m-1", "partner": "jeugdteam"}
    _refused(await PortalDesk(own, {ACTOR_HEADER: ACTOR}).send(assign), ON_BEHALF_OF_HEADER)
    assert await school.rest() == [] and await amqp_school.rest() == []
    assert await db.fetchval("SELECT count(*) FROM melding") == 0


async def test_the_portal_must_name_its_actor(
    clients: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    for actor in (None, "", "x" * 129, "line\nbreak"):
        desk = PortalDesk(clients[PORTAL_SCHOOL], _as_portal(actor=actor))
        _refused(await desk.register("L-2", bsn=valid_bsn(8)), ACTOR_HEADER)
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await Mailbox(clients["portal"]).rest() == []


async def test_a_partner_that_sends_the_portal_header_itself_is_refused(
    clients: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school = PortalDesk(clients["school"], _as_portal())
    _refused(await school.register("S-1", bsn=valid_bsn(9)), ON_BEHALF_OF_HEADER)
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await Mailbox(clients[PORTAL_SCHOOL]).rest() == []


async def test_the_portal_without_message_id_or_with_a_reused_one(
    clients: dict[str, PartnerClient],
) -> None:
    own = Mailbox(clients["portal"])
    sent = await clients["portal"].send(register_body("P-1", bsn=valid_bsn(10)), message_id="")
    assert sent is None
    receipt = await own.receipt(None)
    assert sorted((e["code"], e["loc"]) for e in receipt["errors"]) == [
        ("missing_message_id", "message_id"),
        ("not_authorized", ON_BEHALF_OF_HEADER),
    ]

    school = Mailbox(clients[PORTAL_SCHOOL])
    body = register_body("L-3", bsn=valid_bsn(11))
    for expected in ("accepted", "duplicate"):
        await clients[PORTAL_SCHOOL].send(body, message_id="portal-msg-1", headers=_as_portal())
        assert (await school.receipt("portal-msg-1"))["status"] == expected
    # The id is the acting partner's: the same id from another partner is its own.
    team = Mailbox(clients["jeugdteam"])
    team_body = register_body("T-3", bsn=valid_bsn(12))
    await clients["jeugdteam"].send(team_body, message_id="portal-msg-1")
    assert (await team.receipt("portal-msg-1"))["status"] == "accepted"


async def test_a_retired_portal_partner_is_refused_in_its_own_mailbox(
    portal_region: RegionUnderTest, clients: dict[str, PartnerClient]
) -> None:
    document = portal_region.region.model_dump(mode="json", exclude_none=True)
    for partner in document["partner"]:
        if partner["id"] == PORTAL_SCHOOL:
            partner["retired"] = True
    await apply_region(portal_region, document)
    school = PortalDesk(clients[PORTAL_SCHOOL], _as_portal())
    tries = iter(range(100))

    async def refused() -> bool:
        n = next(tries)  # a fresh ref and youth: only retirement can refuse it
        receipt = await school.register(f"L-{n}", bsn=valid_bsn(100 + n))
        return [(e["code"], "left this region" in e["msg"]) for e in receipt["errors"]] == [
            ("not_authorized", True)
        ]

    await eventually(refused, timeout=15)
    assert await Mailbox(clients["portal"]).rest() == []


async def test_a_portal_message_from_before_the_portal_section_is_replayed_and_answered(
    portal_region: RegionUnderTest,
    clients: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    with_portal = portal_region.region.model_dump(mode="json", exclude_none=True)
    without = {
        **{k: v for k, v in with_portal.items() if k != "portal"},
        "partner": [p for p in with_portal["partner"] if p.get("channel") != "portal"],
    }
    await apply_region(portal_region, without)
    await asyncio.sleep(0.5)  # the services re-read the config every 0.2 s here
    school = PortalDesk(clients[PORTAL_SCHOOL], _as_portal())
    mid = await school.client.send(register_body("L-1", bsn=valid_bsn(21)), headers=school.headers)
    listed: list[dict[str, Any]] = []

    async def rejected() -> bool:
        listed[:] = json.loads((await run_cli(portal_region, "rejected", "list", "--json")).stdout)
        return len(listed) == 1

    await eventually(rejected)
    assert listed[0]["message_id"] == mid and "not a partner" in listed[0]["error"]
    early = await run_cli(portal_region, "rejected", "replay", "--all")
    assert early.exit_code == 1 and "still not a partner" in early.output

    await apply_region(portal_region, with_portal)
    await asyncio.sleep(0.5)
    replayed = await run_cli(portal_region, "rejected", "replay", "--all")
    assert replayed.exit_code == 0, replayed.output
    assert (await school.receipt(mid))["status"] == "accepted"
    assert await _audit(db, "registered") == [(PORTAL_SCHOOL, ACTOR)]
