"""A real headless Chromium for the portal's end-to-end tests: Debian's `chromium`
(installed by scripts/bootstrap.sh), driven by Playwright through executable_path,
with a fresh profile per test; and axe-core, injected into a page to check it."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

from services.portal import accounts
from services.portal.accounts import COORDINATOR_PARTNER, Role
from services.portal.app import start as start_portal
from services.portal.web.admin_routes import activation_link
from shared.clock import utcnow
from shared.db.pool import connect as connect_db
from shared.service import Runtime
from testing.ports import free_port
from tests.conftest import System
from tests.integration.portal_support import portal_settings
from tests.support import RegionUnderTest, eventually, http_get

ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = ROOT / ".venv" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
# What Chromium needs on these machines: no sandbox (root, in a container), no GPU, and
# nothing that reaches out to the network by itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# axe-core impacts that fail a page ("moderate" and "minor" ones do not).
FAILING_IMPACTS = frozenset({"serious", "critical"})


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("no chromium: run scripts/bootstrap.sh (it installs Debian's chromium)")
    return found


@pytest.fixture
async def browser_context(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A freshly launched Chromium with a profile of its own (its own cookies)."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir=tmp_path / "chromium-profile",
            executable_path=chromium_path(),
            headless=True,
            # Dutch forms as a Dutch user sees them (date fields as dd-mm-jjjj).
            args=[*CHROMIUM_ARGS, "--lang=nl-NL"],
            locale="nl-NL",
            timezone_id="Europe/Amsterdam",
            # Generous: the machine that runs the tests may be busy with others.
            timeout=120_000,
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def page(browser_context: BrowserContext) -> Page:
    return browser_context.pages[0] if browser_context.pages else await browser_context.new_page()


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The axe-core violations of serious or critical impact on the page as it is now
    (WCAG 2.1 A and AA rules). The script is evaluated, not added as a tag, so the
    page's Content-Security-Policy does not block it."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"no {AXE_SCRIPT}: run scripts/bootstrap.sh (it installs axe-core)")
    await page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    result: dict[str, Any] = await page.evaluate(
        """() => axe.run(document, {
               runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
               resultTypes: ["violations"],
           })"""
    )
    return [v for v in result["violations"] if v["impact"] in FAILING_IMPACTS]


def describe(violations: list[dict[str, Any]]) -> str:
    """Violations as a readable assertion message."""
    return json.dumps(
        [
            {"rule": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in violations
        ],
        indent=1,
    )


# --- the portal, running with the other services ------------------------------------

# Set to a directory (scripts/portal-screenshots.sh sets docs/img) to keep screenshots
# of the pages the tests visit.
SCREENSHOT_DIR = os.environ.get("VI_PORTAL_SCREENSHOTS")
PASSWORD = "een-lang-wachtwoord-voor-de-test"


@dataclass
class PortalSite:
    """The portal web service of the test region, with its services running."""

    url: str
    region: RegionUnderTest

    async def invite(self, partner_id: str, email: str, role: Role = Role.ORG_ADMIN) -> str:
        """A new account, as `verwijsindex portal user add` makes it: its activation link."""
        conn = await connect_db(self.region.settings.database_url)
        try:
            _user, token = await accounts.invite(
                conn,
                partner_id=partner_id,
                email=email,
                role=role,
                now=utcnow(),
                valid_days=1,
            )
        finally:
            await conn.close()
        return activation_link(self.url, token)

    async def invite_coordinator(self, email: str, *codes: str) -> str:
        """A match coordinator's account for the municipalities `codes`: its link."""
        conn = await connect_db(self.region.settings.database_url)
        try:
            _user, token = await accounts.invite(
                conn,
                partner_id=COORDINATOR_PARTNER,
                email=email,
                role=Role.COORDINATOR,
                now=utcnow(),
                valid_days=1,
                municipalities=codes,
            )
        finally:
            await conn.close()
        return activation_link(self.url, token)


@pytest.fixture
async def portal_site(portal_region: RegionUnderTest, system: System) -> PortalSite:
    """Ingest, matcher, notifier and the portal (on a free port, plain http, so its
    cookies go without Secure) against the region with the portal schools."""
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    port = free_port()
    settings = portal_settings(
        portal_region,
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        insecure_cookies=True,
        receipt_wait_seconds=8.0,
    )

    async def setup(runtime: Runtime) -> None:
        await start_portal(runtime, settings)

    await system.start("portal", setup=setup)

    async def up() -> bool:
        try:
            status, _ = await http_get(settings.base_url + "/inloggen")
        except OSError:
            return False
        return status == 200

    await eventually(up, timeout=20)
    return PortalSite(settings.base_url, portal_region)


def totp_code(secret: str, *, steps_ahead: int = 0) -> str:
    """The authenticator's code; `steps_ahead` 1 gives the next one (each code is
    accepted once, and one step of clock drift is allowed)."""
    return str(pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead))


async def activate(page: Page, link: str, *, name: str, shoot_as: str | None = None) -> str:
    """Activate an account in the browser (password and second factor, as a new user
    does it); returns the TOTP secret the page showed."""
    await page.goto(link)
    secret = (await page.locator("#secret").inner_text()).replace(" ", "")
    await page.get_by_label("Naam", exact=True).fill(name)
    await page.get_by_label("Nieuw wachtwoord").fill(PASSWORD)
    await page.get_by_label("Herhaal wachtwoord").fill(PASSWORD)
    await page.get_by_label("Verificatiecode").fill(totp_code(secret))
    if shoot_as:
        await screenshot(page, shoot_as)
    await page.get_by_role("button", name="Activeren").click()
    await page.wait_for_url("**/inloggen?geactiveerd=1")
    return secret


async def log_in(
    page: Page, site: PortalSite, email: str, secret: str, *, home: str = "/meldingen"
) -> None:
    await page.goto(site.url + "/inloggen")
    await page.get_by_label("E-mailadres").fill(email)
    await page.get_by_label("Wachtwoord", exact=True).fill(PASSWORD)
    await page.get_by_label("Verificatiecode").fill(totp_code(secret, steps_ahead=1))
    await page.get_by_role("button", name="Inloggen").click()
    await page.wait_for_url("**" + home)


async def assert_accessible(page: Page) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"{page.url}: {describe(violations)}"


async def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot of the page when VI_PORTAL_SCREENSHOTS names a directory."""
    if SCREENSHOT_DIR:
        await page.screenshot(path=Path(SCREENSHOT_DIR) / f"portal-{name}.png", full_page=True)


async def reload_until_shown(page: Page, url: str, text: str, timeout: float = 30.0) -> None:
    """Open `url` again until `text` is on the page: the portal shows what the index
    answered once its mailbox brought it, and a page does not refresh by itself."""
    deadline = time.monotonic() + timeout
    while True:
        await page.goto(url)
        if await page.get_by_text(text, exact=True).count():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not show {text!r} within {timeout} s")
        await page.wait_for_timeout(300)
