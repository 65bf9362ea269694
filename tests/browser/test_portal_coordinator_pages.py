"""The match coordinator's workbench end to end, in a real headless Chromium against
the running services: escalated matches first, a coordinator of another municipality
neither sees nor assigns a match, assigning the lead reaches the partners' systems as
regie.notice, and every page passes axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from services.retention.sweep import Sweep
from shared.clock import utcnow
from shared.partner_client import PartnerClient
from tests.browser.conftest import (
    PortalSite,
    activate,
    assert_accessible,
    log_in,
    reload_until_shown,
    screenshot,
)
from tests.conftest import System
from tests.integration.test_matching import Mailbox
from tests.support import valid_bsn

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AMSTERDAM, ROTTERDAM = "0363", "0599"
COORDINATOR = "regie@amsterdam.example"


@pytest.fixture
async def box(portal_site: PortalSite) -> AsyncIterator[dict[str, Mailbox]]:
    """The partners' own systems, linked over AMQP."""
    region = portal_site.region
    clients = {}
    for pid in ("school", "jeugdteam", "jgz", "huisarts"):
        partner = region.region.partners_by_id[pid]
        client = PartnerClient(region.partner_url(pid), pid, partner.own_broker_user)
        await client.start()
        clients[pid] = client
    try:
        yield {pid: Mailbox(client) for pid, client in clients.items()}
    finally:
        for client in clients.values():
            await client.close()


async def _match(box: dict[str, Mailbox], first: str, second: str, bsn: str) -> str:
    for pid in (first, second):
        assert (await box[pid].register(f"{pid}-{bsn}", bsn=bsn))["status"] == "accepted"
    await box[first].notice("match.notice", f"{first}-{bsn}")
    return str((await box[second].notice("match.notice", f"{second}-{bsn}")).body["match_id"])


async def _coordinator_signed_in(page: Page, site: PortalSite, email: str, *codes: str) -> None:
    link = await site.invite_coordinator(email, *codes)
    secret = await activate(page, link, name="M. Regisseur")
    await log_in(page, site, email, secret, home="/coordinatie")


async def test_the_coordinator_sees_the_escalated_match_first_and_another_municipality_nothing(
    page: Page,
    portal_site: PortalSite,
    system: System,
    box: dict[str, Mailbox],
    db: asyncpg.Connection[Any],
) -> None:
    site = portal_site
    # A: the older match, with a lead. B: later, without one, escalated by the sweep.
    match_a = await _match(box, "school", "jeugdteam", valid_bsn(6101))
    assert (await box["jeugdteam"].claim(f"jeugdteam-{valid_bsn(6101)}"))["status"] == "accepted"
    match_b = await _match(box, "jgz", "huisarts", valid_bsn(6102))
    matcher = next(r for r in system.runtimes if r.name == "matcher")
    sweep = Sweep(matcher.pool, matcher.outbox, await matcher.region.get(), matcher.pseudonyms)
    assert (await sweep.run(utcnow() + timedelta(days=15))).counts.get("lead_escalated") == 1

    await _coordinator_signed_in(page, site, COORDINATOR, AMSTERDAM)
    cards = page.locator("li.card")
    await expect(cards).to_have_count(2)
    await expect(cards.nth(0)).to_have_attribute("id", f"match-{match_b}")
    await expect(cards.nth(0).get_by_text("Geëscaleerd")).to_be_visible()
    await expect(cards.nth(1)).to_have_attribute("id", f"match-{match_a}")
    await expect(cards.nth(1).get_by_text("Jeugdteam Noord").first).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "coordinatie")

    await page.get_by_role("link", name="Deelname").click()
    await page.wait_for_url("**/coordinatie/deelname")
    await expect(page.get_by_role("img", name="Meldingen en matches per maand")).to_be_visible()
    await expect(page.get_by_role("link", name="Download als CSV")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "deelname")

    # Rotterdam's coordinator: no match of Amsterdam on the page, and a post to assign
    # one (with a valid CSRF token of their own session) is not found.
    await page.get_by_role("button", name="Uitloggen").click()
    await _coordinator_signed_in(page, site, "regie@rotterdam.example", ROTTERDAM)
    await expect(page.get_by_text("Er zijn geen open matches.")).to_be_visible()
    assert match_b not in await page.content()
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    refused = await page.request.post(
        f"{site.url}/coordinatie/matches/{match_b}/regie",
        form={"csrf": csrf or "", "partner": "jgz"},
    )
    assert refused.status == 404
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0


async def test_assigning_the_lead_reaches_every_partner_in_the_match_as_regie_notice(
    page: Page, portal_site: PortalSite, box: dict[str, Mailbox]
) -> None:
    site = portal_site
    bsn = valid_bsn(6201)
    match_id = await _match(box, "jgz", "huisarts", bsn)
    await _coordinator_signed_in(page, site, COORDINATOR, AMSTERDAM)
    card = page.locator(f"#match-{match_id}")
    await card.get_by_label("Regie toewijzen aan").select_option(label="Huisartsenpraktijk West")
    await card.get_by_role("button", name="Regie toewijzen").click()
    await page.wait_for_url("**/coordinatie*")
    for pid in ("jgz", "huisarts"):
        notice = (await box[pid].notice("regie.notice", f"{pid}-{bsn}")).body
        assert notice["match_id"] == match_id
        assert notice["lead"]["partner"] == "huisarts"
    await reload_until_shown(
        page,
        f"{site.url}/coordinatie",
        "Regie toegewezen aan Huisartsenpraktijk West: geaccepteerd door de verwijsindex.",
    )
    card = page.locator(f"#match-{match_id}")
    await expect(card.get_by_label("Regie verplaatsen naar")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "coordinatie-regie")
