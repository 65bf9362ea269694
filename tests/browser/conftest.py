"""A real headless Chromium for the portal's end-to-end tests: Debian's `chromium`
(installed by scripts/bootstrap.sh), driven by Playwright through executable_path,
with a fresh profile per test; and axe-core, injected into a page to check it."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright

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
# axe-core impacts that fail a page (the others are reported, not failed).
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
            args=CHROMIUM_ARGS,
            locale="nl-NL",
            timezone_id="Europe/Amsterdam",
        )
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
