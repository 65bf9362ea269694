"""The match coordinator's workbench in the portal, through its pages (httpx against
the ASGI app) with the real pipeline, database and broker: the matches of the
coordinator's municipalities (escalated first), follow-up, participation, lead
assignment, and nothing of another municipality."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pyotp
import pytest

from services.portal import coordination
from services.retention.sweep import Sweep
from shared.amqp.topology import INGEST_QUEUE, OUTBOUND_EXCHANGE
from shared.clock import utcnow
from shared.contract.portal import ACTOR_HEADER, COORDINATOR_HEADER, ON_BEHALF_OF_HEADER
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.region.model import PORTAL_ID
from tests.conftest import PORTAL_SCHOOL, System
from tests.integration.portal_support import (
    Account,
    Browser,
    make_account,
    make_coordinator,
    portal_settings,
    start_portal,
)
from tests.integration.test_matching import Mailbox
from tests.support import RegionUnderTest, drain, eventually, run_cli, valid_bsn

AMSTERDAM, ROTTERDAM = "0363", "0599"
LINKED = ("school", "jeugdteam", "jgz", "huisarts", "brp")


@pytest.fixture
async def box(portal_region: RegionUnderTest) -> AsyncIterator[dict[str, Mailbox]]:
    """The mailboxes of the partners with their own system link."""
    clients = {}
    for pid in LINKED:
        partner = portal_region.region.partners_by_id[pid]
        client = PartnerClient(portal_region.partner_url(pid), pid, partner.own_broker_user)
        await client.start()
        clients[pid] = client
    try:
        yield {pid: Mailbox(client) for pid, client in clients.items()}
    finally:
        for client in clients.values():
            await client.close()


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    made: list[Browser] = []
    try:
        yield made
    finally:
        for browser in made:
            await browser.close()


async def _match(
    box: dict[str, Mailbox], first: str, second: str, bsn: str, municipality: str = AMSTERDAM
) -> str:
    """Two partners register one youth; returns the match_id."""
    for pid in (first, second):
        receipt = await box[pid].register(f"{pid}-{bsn}", bsn=bsn, municipality=municipality)
        assert receipt["status"] == "accepted", receipt
    notice = await box[second].notice("match.notice", f"{second}-{bsn}")
    await box[first].notice("match.notice", f"{first}-{bsn}")
    return str(notice.body["match_id"])


def _card(page: str, match_id: str) -> str:
    """The part of the page about one match (its card or table row)."""
    found = re.search(rf'id="match-{match_id}".*?(?=id="match-|</ul>\s*<h2|</tbody>)', page, re.S)
    assert found, f"match {match_id} is not on the page"
    return found[0]


async def _signed_in(app: Any, account: Account, browsers: list[Browser], at: Any) -> Browser:
    """A browser signed in as `account` with the portal's clock at `at`."""
    browser = Browser(app)
    browsers.append(browser)
    browser.portal.clock = lambda: at
    answer = await browser.log_in(account, code=str(pyotp.TOTP(account.secret).at(at)))
    assert answer.status_code == 303
    assert answer.headers["location"] == (
        "/coordinatie" if account.user.is_coordinator else "/meldingen"
    )
    return browser


async def test_the_coordinator_sees_their_matches_escalated_first_and_records_follow_up(
    portal_region: RegionUnderTest,
    system: System,
    box: dict[str, Mailbox],
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    for name in ("ingest", "notifier"):
        await system.start(name)
    matcher = await system.start("matcher")
    bsn_a, bsn_b, bsn_c = valid_bsn(801), valid_bsn(802), valid_bsn(803)
    # A: the oldest match, with a lead. B: later, no lead. C: in Rotterdam.
    match_a = await _match(box, "school", "jeugdteam", bsn_a)
    assert (await box["jeugdteam"].claim(f"jeugdteam-{bsn_a}"))["status"] == "accepted"
    match_b = await _match(box, "jgz", "huisarts", bsn_b)
    match_c = await _match(box, "school", "jgz", bsn_c, ROTTERDAM)
    # Fifteen days on, the sweep escalates the matches without a lead (B and C).
    later = utcnow() + timedelta(days=15)
    sweep = Sweep(matcher.pool, matcher.outbox, await matcher.region.get(), matcher.pseudonyms)
    assert (await sweep.run(later)).counts.get("lead_escalated") == 2

    app = await start_portal(system, portal_settings(portal_region))
    coordinator = await make_coordinator(portal_region, AMSTERDAM)
    browser = await _signed_in(app, coordinator, browsers, later)
    page = (await browser.get("/coordinatie")).text
    # Escalated first, though formed after A; Rotterdam's match is not there at all.
    assert page.index(f'id="match-{match_b}"') < page.index(f'id="match-{match_a}"')
    assert match_c not in page
    b = _card(page, match_b)
    assert "Geëscaleerd" in b and "Niemand, al 15 dagen" in b
    assert "GGD Jeugdgezondheidszorg" in b and "contact@huisarts.example" in b
    assert "Nog niet afgestemd" in b  # 15 days, VI_PORTAL_FOLLOWUP_DAYS 14
    a = _card(page, match_a)
    assert "Geëscaleerd" not in a and "Jeugdteam Noord" in a and "contact@school.example" in a
    # Never the youth's BSN or birth date (register_body's 2014-05-01).
    for secret in (bsn_a, bsn_b, "01-05-2014", "2014-05-01"):
        assert secret not in page

    followed = await browser.post_form(
        "/coordinatie", f"/coordinatie/matches/{match_a}/afgestemd", {}
    )
    assert followed.status_code == 303
    a = _card((await browser.get("/coordinatie")).text, match_a)
    assert "Ja, vastgelegd op" in a and "Nog niet afgestemd" not in a
    assert (
        await db.fetchval(
            "SELECT recorded_by FROM coordinator_followup WHERE match_id = $1", uuid.UUID(match_a)
        )
        == coordinator.user.id
    )
    # Another municipality's match can be neither followed up nor assigned, nor can
    # one whose id is none.
    for match in (match_c, "geen-id"):
        for action in ("afgestemd", "regie"):
            refused = await browser.post_form(
                "/coordinatie", f"/coordinatie/matches/{match}/{action}", {"partner": "jgz"}
            )
            assert refused.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM coordinator_followup") == 1
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0
    # The organisations' pages are not the coordinator's.
    assert (await browser.get("/meldingen")).status_code == 403
    listed = await db.fetch(
        "SELECT actor, portal_user FROM audit_log WHERE action = 'portal_matches_listed'"
    )
    assert {(r["actor"], r["portal_user"]) for r in listed} == {
        ("coordinator", str(coordinator.user.id))
    }

    # C's youth moves to Amsterdam: its match shows here now, marked as moved in.
    moved = {
        "type": "person.moved",
        "bsn": bsn_c,
        "municipality": AMSTERDAM,
        "moved_at": utcnow().isoformat(),
    }
    assert (await box["brp"].send(moved))["status"] == "accepted"
    c = _card((await browser.get("/coordinatie")).text, match_c)
    assert "verhuisd naar deze gemeente" in c

    # B ends (the GGD withdraws): it moves to the ended matches, without the forms.
    assert (await box["jgz"].withdraw(f"jgz-{bsn_b}"))["status"] == "accepted"
    page = (await browser.get("/coordinatie")).text
    ended = page[page.index('id="beeindigd"') :]
    assert f'id="match-{match_b}"' in ended
    assert f"/coordinatie/matches/{match_b}/regie" not in page

    # A's youth dies: the index purges everything, and the follow-up goes with it.
    dead = {"type": "person.deceased", "bsn": bsn_a, "died_on": utcnow().date().isoformat()}
    assert (await box["brp"].send(dead))["status"] == "accepted"
    assert await db.fetchval("SELECT count(*) FROM coordinator_followup") == 0
    assert match_a not in (await browser.get("/coordinatie")).text


async def test_participation_per_organisation_with_small_counts_suppressed_and_a_csv(
    portal_region: RegionUnderTest,
    system: System,
    box: dict[str, Mailbox],
    browsers: list[Browser],
) -> None:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    # Six meldingen of the school in Amsterdam, one of them matched with the team.
    for n in range(6):
        receipt = await box["school"].register(f"S-{n}", bsn=valid_bsn(900 + n))
        assert receipt["status"] == "accepted"
    await _match(box, "huisarts", "jeugdteam", valid_bsn(900))
    await box["school"].notice("match.notice", "S-0")
    app = await start_portal(system, portal_settings(portal_region))
    coordinator = await make_coordinator(portal_region, AMSTERDAM, ROTTERDAM)
    browser = await _signed_in(app, coordinator, browsers, utcnow())

    page = await browser.get(f"/coordinatie/deelname?gemeente={AMSTERDAM}")
    assert page.status_code == 200
    school = re.search(r"<td>Basisschool De Regenboog</td>(.*?)</tr>", page.text, re.S)
    assert school, page.text
    cells = re.findall(r"<td>(.*?)</td>", school[1])
    assert cells[:4] == ["Onderwijs", "6", "&lt;5", "-"]  # 6 meldingen, 1 matched
    assert "<svg" in page.text and "<script" not in page.text
    assert "Meldingen en matches per maand" in page.text

    download = await browser.get(f"/coordinatie/deelname.csv?gemeente={AMSTERDAM}")
    assert download.headers["content-type"].startswith("text/csv")
    rows = download.text.splitlines()
    assert rows[0].startswith("organisatie,sector,meldingen")
    assert "Basisschool De Regenboog,onderwijs,6,<5,-," in download.text
    assert "Jeugdteam Noord,jeugdhulp,<5,<5,-," in download.text
    # A municipality the coordinator does not have is not found.
    other = await browser.get("/coordinatie/deelname?gemeente=0344")
    assert other.status_code == 404
    # A professional of a portal school has no coordinator's pages.
    professional = await make_account(portal_region, PORTAL_SCHOOL)
    school_browser = await _signed_in(app, professional, browsers, utcnow())
    for path in ("/coordinatie", "/coordinatie/deelname", "/coordinatie/deelname.csv"):
        assert (await school_browser.get(path)).status_code == 403


async def test_assigning_the_lead_publishes_regie_assign_and_shows_the_answer(
    portal_region: RegionUnderTest,
    system: System,
    box: dict[str, Mailbox],
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    ingest = await system.start("ingest")
    for name in ("matcher", "notifier"):
        await system.start(name)
    match_id = await _match(box, "school", "jeugdteam", valid_bsn(950))
    # Without ingest, what the portal publishes waits in vi.ingest: the test reads it
    # and plays the index's answer into partner.portal.
    await system.stop(ingest)
    runtime = system.runtimes[0]
    app = await start_portal(system, portal_settings(portal_region, receipt_wait_seconds=0.2))
    coordinator = await make_coordinator(portal_region, AMSTERDAM)
    browser = await _signed_in(app, coordinator, browsers, utcnow())
    page = (await browser.get("/coordinatie")).text
    assert 'name="partner"' in _card(page, match_id)

    sent = await browser.post_form(
        "/coordinatie", f"/coordinatie/matches/{match_id}/regie", {"partner": "school"}
    )
    assert sent.status_code == 303
    got: list[Any] = []

    async def arrived() -> bool:
        got.extend(await drain(runtime, INGEST_QUEUE))
        return bool(got)

    await eventually(arrived)
    [message] = got
    assert portal_region.region.portal is not None
    assert message.user_id == portal_region.region.portal.broker_user
    assert message.headers[COORDINATOR_HEADER] == AMSTERDAM
    assert message.headers[ACTOR_HEADER] == str(coordinator.user.id)
    assert ON_BEHALF_OF_HEADER not in message.headers
    assert json.loads(message.body) == {
        "type": "regie.assign",
        "match_id": match_id,
        "partner": "school",
    }
    card = _card((await browser.get("/coordinatie")).text, match_id)
    assert "wacht op antwoord" in card

    refusal = {
        "type": "receipt",
        "in_reply_to": message.message_id,
        "status": "rejected",
        "errors": [{"loc": "partner", "code": "not_active", "msg": "no active melding"}],
    }
    await runtime.publisher.publish(
        OutboundMessage(
            OUTBOUND_EXCHANGE,
            PORTAL_ID,
            json.dumps(refusal).encode(),
            message_type=None,
            message_id=f"receipt-{message.message_id}",
            correlation_id=message.message_id,
        ),
    )

    async def answered() -> bool:
        card = _card((await browser.get("/coordinatie")).text, match_id)
        return "geweigerd" in card

    await eventually(answered)
    card = _card((await browser.get("/coordinatie")).text, match_id)
    assert "Deze organisatie heeft geen actieve melding (meer) in deze match" in card
    assert 'aria-invalid="true"' in card
    entry = await db.fetchrow(
        "SELECT actor, portal_user, match_id, detail FROM audit_log"
        " WHERE action = 'portal_request_sent'"
    )
    assert entry is not None
    assert entry["actor"] == "coordinator" and entry["portal_user"] == str(coordinator.user.id)
    assert str(entry["match_id"]) == match_id and entry["detail"]["partner"] == "school"

    # The youth dies: the index purges the match, and the portal forgets the assignment
    # and its receipt (the housekeeping every replica runs).
    await coordination.forget_gone_matches(db)
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 1  # match still there
    await system.start("ingest")
    dead = {
        "type": "person.deceased",
        "bsn": valid_bsn(950),
        "died_on": utcnow().date().isoformat(),
    }
    assert (await box["brp"].send(dead))["status"] == "accepted"
    await coordination.forget_gone_matches(db)  # (or the portal's own run did it)
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0
    assert (
        await db.fetchval("SELECT count(*) FROM portal_notice WHERE partner_id = $1", PORTAL_ID)
        == 0
    )


async def test_the_operator_adds_a_coordinator_for_municipalities_of_the_region(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    env = {"VI_PORTAL_BASE_URL": "https://portal.test"}
    add = ("portal", "user", "add", "--role", "coordinator", "--email")
    added = await run_cli(
        portal_region,
        *add,
        "regie@amsterdam.example",
        "--municipality",
        AMSTERDAM,
        "--municipality",
        ROTTERDAM,
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "municipalities 0363, 0599" in added.output
    link = re.search(r"activation link: https://portal\.test(/activeren/\S+)", added.output)
    assert link
    browser = Browser(app)
    browsers.append(browser)
    assert (await browser.get(link[1])).status_code == 200
    row = await db.fetchrow(
        "SELECT partner_id, role, municipalities FROM portal_user WHERE email = $1",
        "regie@amsterdam.example",
    )
    assert row is not None
    assert (row["partner_id"], row["role"], row["municipalities"]) == (
        PORTAL_ID,
        "coordinator",
        [AMSTERDAM, ROTTERDAM],
    )
    # Not a municipality of the region; a partner beside the municipality; none at all.
    unknown = await run_cli(portal_region, *add, "a@b.example", "--municipality", "9999")
    assert unknown.exit_code != 0 and "no municipality 9999" in unknown.output
    both = await run_cli(
        portal_region, *add, "a@b.example", "--municipality", AMSTERDAM, "--partner", "linde"
    )
    assert both.exit_code != 0 and "leave out --partner" in both.output
    bare = await run_cli(portal_region, *add, "a@b.example")
    assert bare.exit_code != 0 and "--municipality CODE" in bare.output
    listed = await run_cli(portal_region, "portal", "user", "list")
    assert "gemeente 0363, 0599" in listed.output
    helped = await run_cli(portal_region, "portal", "user", "add", "--help")
    assert "--municipality CODE" in helped.output and "coordinator" in helped.output

    # The demo coordinator (scripts/run.sh) logs in with what the command prints.
    demo = await run_cli(
        portal_region,
        "portal",
        "demo-account",
        "--municipality",
        ROTTERDAM,
        "--email",
        "demo@rotterdam.example",
    )
    assert demo.exit_code == 0, demo.output
    password = re.search(r"^password: (\S+)$", demo.output, re.M)
    secret = re.search(r"^TOTP secret: (\S+)", demo.output, re.M)
    assert password and secret
    logged_in = await browser.post_form(
        "/inloggen",
        "/inloggen",
        {
            "email": "demo@rotterdam.example",
            "password": password[1],
            "code": pyotp.TOTP(secret[1]).now(),
        },
    )
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/coordinatie"
    assert "Matches in Rotterdam" in (await browser.get("/coordinatie")).text
