"""The portal end to end, in a real headless Chromium against the running services:
a portal school and a system-linked youth team find each other, the second factor,
CSRF and another organisation's meldingen are enforced, and the pages pass axe-core.

VI_PORTAL_SCREENSHOTS=DIR keeps screenshots of the main pages (see
scripts/portal-screenshots.sh, which renews those in docs/img/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Page, expect

from services.portal.accounts import Role
from shared.partner_client import PartnerClient
from tests.browser.conftest import (
    PASSWORD,
    PortalSite,
    activate,
    assert_accessible,
    log_in,
    reload_until_shown,
    screenshot,
)
from tests.conftest import PORTAL_SCHOOL
from tests.integration.test_matching import Mailbox
from tests.support import valid_bsn

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SCHOOL_ADMIN = "ib@linde.example"


@pytest.fixture
async def team(portal_site: PortalSite) -> AsyncIterator[Mailbox]:
    """Jeugdteam Noord's own system, linked over AMQP."""
    region = portal_site.region
    client = PartnerClient(
        region.partner_url("jeugdteam"),
        "jeugdteam",
        region.region.partners_by_id["jeugdteam"].own_broker_user,
    )
    await client.start()
    try:
        yield Mailbox(client)
    finally:
        await client.close()


async def _school_signed_in(page: Page, site: PortalSite, email: str = SCHOOL_ADMIN) -> str:
    """An intern begeleider of the portal school, activated and signed in; the secret."""
    secret = await activate(page, await site.invite(PORTAL_SCHOOL, email), name="M. Jansen")
    await log_in(page, site, email, secret)
    return secret


async def _register(page: Page, site: PortalSite, bsn: str) -> str:
    """Register a melding through the form; its melding_ref, once the index accepted it."""
    await page.goto(site.url + "/meldingen/nieuw")
    await page.get_by_label("BSN").fill(bsn)
    await page.get_by_label("Geboortedatum").fill("2014-05-01")
    await page.get_by_label("Gemeente").select_option(label="Amsterdam")
    await page.get_by_role("button", name="Registreren").click()
    await page.wait_for_url("**/meldingen/P-*")
    ref = page.url.rsplit("/", 1)[1].split("?")[0]
    await reload_until_shown(page, f"{site.url}/meldingen/{ref}", "Actief")
    return ref


async def test_a_portal_school_and_a_linked_team_register_on_one_youth_and_both_see_the_match(
    page: Page, portal_site: PortalSite, team: Mailbox, db: asyncpg.Connection[Any]
) -> None:
    site = portal_site
    await page.goto(site.url + "/inloggen")
    await assert_accessible(page)
    await screenshot(page, "inloggen")

    link = await site.invite(PORTAL_SCHOOL, SCHOOL_ADMIN)
    await page.goto(link)
    await assert_accessible(page)
    secret = await activate(page, link, name="M. Jansen", shoot_as="activeren")
    await log_in(page, site, SCHOOL_ADMIN, secret)
    await assert_accessible(page)

    await page.goto(site.url + "/meldingen/nieuw")
    # The reporter's contact data come from the account.
    await expect(page.get_by_label("Uw naam")).to_have_value("M. Jansen")
    await expect(page.get_by_label("Uw e-mailadres")).to_have_value(SCHOOL_ADMIN)
    await assert_accessible(page)
    await screenshot(page, "nieuwe-melding")

    youth = valid_bsn(5150)
    ref = await _register(page, site, youth)
    receipt = await team.register("T-1", bsn=youth)
    assert receipt["status"] == "accepted"
    told_team = (await team.notice("match.notice", "T-1")).body
    assert [c["partner"] for c in told_team["counterparts"]] == [PORTAL_SCHOOL]
    assert told_team["counterparts"][0]["reporter"]["name"] == "M. Jansen"

    # The school sees the match on its melding's page once the notice is read.
    await reload_until_shown(page, f"{site.url}/meldingen/{ref}", "Jeugdteam Noord")
    await expect(page.get_by_role("button", name="Regie nemen")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "melding")

    await page.goto(site.url + "/meldingen")
    await expect(page.get_by_role("link", name=ref)).to_be_visible()
    await expect(page.get_by_text("Jeugdteam Noord")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "meldingen")
    # On a phone the page fits the screen's width: nothing to scroll sideways.
    await page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/meldingen", f"/meldingen/{ref}", "/meldingen/nieuw"):
        await page.goto(site.url + path)
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone screen"
    await page.goto(f"{site.url}/meldingen/{ref}")
    await screenshot(page, "melding-telefoon")

    # The professional acted through the portal: the index's audit log names them.
    actors = await db.fetch(
        "SELECT actor, portal_user FROM audit_log WHERE action = 'registered' ORDER BY id"
    )
    assert [r["actor"] for r in actors] == [PORTAL_SCHOOL, "jeugdteam"]
    assert actors[0]["portal_user"] is not None and actors[1]["portal_user"] is None


async def test_login_without_the_second_factor_fails(page: Page, portal_site: PortalSite) -> None:
    site = portal_site
    secret = await activate(page, await site.invite(PORTAL_SCHOOL, SCHOOL_ADMIN), name="M. J.")
    for code in ("000000", ""):
        await page.goto(site.url + "/inloggen")
        await page.get_by_label("E-mailadres").fill(SCHOOL_ADMIN)
        await page.get_by_label("Wachtwoord", exact=True).fill(PASSWORD)
        code_field = page.get_by_label("Verificatiecode")
        # The browser would not even send an empty code: the server must refuse it too.
        await code_field.evaluate("field => field.removeAttribute('required')")
        await code_field.fill(code)
        await page.get_by_role("button", name="Inloggen").click()
        await page.wait_for_load_state()
        assert page.url.endswith("/inloggen"), page.url
        await expect(page.get_by_role("alert")).to_be_visible()
        await assert_accessible(page)
    await page.goto(site.url + "/meldingen")
    assert page.url.endswith("/inloggen")  # not signed in
    # With both factors the same account gets in.
    await log_in(page, site, SCHOOL_ADMIN, secret)


async def test_a_form_post_without_its_csrf_token_is_refused(
    page: Page, portal_site: PortalSite, db: asyncpg.Connection[Any]
) -> None:
    site = portal_site
    await _school_signed_in(page, site)
    await page.goto(site.url + "/meldingen/nieuw")
    await page.get_by_label("BSN").fill(valid_bsn(6160))
    await page.get_by_label("Geboortedatum").fill("2014-05-01")
    await page.get_by_label("Gemeente").select_option(label="Amsterdam")
    await page.locator("form[action='/meldingen/nieuw'] input[name=csrf]").evaluate(
        "field => field.remove()"
    )
    await page.get_by_role("button", name="Registreren").click()
    await expect(page.get_by_role("heading", name="Formulier verlopen")).to_be_visible()
    await assert_accessible(page)
    # A forged post from elsewhere, with the session cookie but another token.
    forged = await page.request.post(
        site.url + "/meldingen/nieuw",
        form={"csrf": "guessed", "bsn": valid_bsn(6161), "birth_date": "2014-05-01"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0


async def test_another_organisations_melding_cannot_be_reached_by_its_url(
    page: Page, portal_site: PortalSite, db: asyncpg.Connection[Any]
) -> None:
    site = portal_site
    await _school_signed_in(page, site)
    ref = await _register(page, site, valid_bsn(7170))
    await page.get_by_role("button", name="Uitloggen").click()

    other = "ib@eik.example"
    secret = await activate(page, await site.invite("eik", other), name="K. de Boer")
    await log_in(page, site, other, secret)
    shown = await page.goto(f"{site.url}/meldingen/{ref}")
    assert shown is not None and shown.status == 404
    await expect(page.get_by_role("heading", name="Niet gevonden")).to_be_visible()
    await assert_accessible(page)
    await page.goto(site.url + "/meldingen")
    await expect(page.get_by_role("link", name=ref)).to_have_count(0)
    token = await page.locator("input[name=csrf]").first.get_attribute("value")
    withdraw = await page.request.post(
        f"{site.url}/meldingen/{ref}/intrekken",
        form={"csrf": token or "", "reason": "unjustified"},
        max_redirects=0,
    )
    assert withdraw.status == 404
    assert await db.fetchval("SELECT state FROM melding WHERE melding_ref = $1", ref) == "active"


async def test_a_professional_sees_only_their_own_meldingen(
    page: Page, portal_site: PortalSite
) -> None:
    site = portal_site
    await _school_signed_in(page, site)
    ref = await _register(page, site, valid_bsn(8180))
    await page.get_by_role("button", name="Uitloggen").click()
    colleague = "leerkracht@linde.example"
    link = await site.invite(PORTAL_SCHOOL, colleague, Role.PROFESSIONAL)
    secret = await activate(page, link, name="P. de Wit")
    await log_in(page, site, colleague, secret)
    shown = await page.goto(f"{site.url}/meldingen/{ref}")
    assert shown is not None and shown.status == 404


async def test_a_refused_melding_shows_the_reason_beside_its_field(
    page: Page, portal_site: PortalSite
) -> None:
    site = portal_site
    await _school_signed_in(page, site)
    await page.goto(site.url + "/meldingen/nieuw")
    await page.get_by_label("BSN").fill("123456789")  # nine digits, not a BSN
    await page.get_by_label("Geboortedatum").fill("2014-05-01")
    await page.get_by_label("Gemeente").select_option(label="Amsterdam")
    await page.get_by_role("button", name="Registreren").click()
    # The index's answer (bsn_checksum), in Dutch, tied to the field it concerns.
    bsn = page.get_by_label("BSN")
    await expect(bsn).to_have_attribute("aria-invalid", "true", timeout=30_000)
    await expect(page.locator("#bsn-fout")).to_contain_text("elfproef")
    described_by = await bsn.get_attribute("aria-describedby") or ""
    assert "bsn-fout" in described_by.split()
    await expect(page.get_by_role("alert")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "foutmelding")


async def test_an_org_admin_invites_a_colleague_whose_link_activates_the_account(
    page: Page, portal_site: PortalSite
) -> None:
    site = portal_site
    await _school_signed_in(page, site)
    await page.get_by_role("link", name="Accounts").click()
    colleague = "leerkracht@linde.example"
    await page.get_by_label("E-mailadres").fill(colleague)
    await page.get_by_label("Naam", exact=True).fill("P. de Wit")
    await page.get_by_label("Professional").check()
    await page.get_by_role("button", name="Uitnodigen").click()
    link = (await page.locator("#activeringslink").inner_text()).strip()
    assert link.startswith(site.url + "/activeren/")
    await expect(page.get_by_role("cell", name=colleague, exact=True)).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "accounts")
    await page.get_by_role("button", name="Uitloggen").click()

    secret = await activate(page, link, name="P. de Wit")
    await log_in(page, site, colleague, secret)
    await expect(page.get_by_role("link", name="Accounts")).to_have_count(0)  # no admin
    shown = await page.goto(site.url + "/beheer")
    assert shown is not None and shown.status == 403
