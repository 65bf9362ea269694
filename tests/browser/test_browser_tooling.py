"""The browser tooling itself: Debian's Chromium starts headless under Playwright, and
axe-core, injected into a page that forbids inline scripts, finds what it must."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import Page

from tests.browser.conftest import axe_violations, describe

pytestmark = pytest.mark.browser

GOOD = """<!doctype html><html lang="nl"><head><title>Melding</title></head><body>
<main><h1>Melding registreren</h1><form method="post">
<label for="bsn">BSN</label><input id="bsn" name="bsn">
<button type="submit">Registreren</button></form></main></body></html>"""
# An input without a label and a button without a name: both serious or critical.
BAD = """<!doctype html><html lang="nl"><head><title>Melding</title></head><body>
<main><h1>Melding registreren</h1><form method="post">
<input id="bsn" name="bsn"><button type="submit"></button></form></main></body></html>"""


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (BAD if self.path == "/bad" else GOOD).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        # As strict as the portal's: no inline or evaluated script of the page's own.
        self.send_header("Content-Security-Policy", "default-src 'self'; script-src 'self'")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_chromium_renders_a_page_and_finds_fields_by_their_accessible_names(
    page: Page, site: str
) -> None:
    await page.goto(site + "/good")
    await page.get_by_label("BSN").fill("111222333")
    assert await page.get_by_label("BSN").input_value() == "111222333"
    assert await page.get_by_role("button", name="Registreren").is_visible()
    assert await page.evaluate("navigator.webdriver") is True  # driven, not a user's


async def test_axe_passes_a_labelled_form_and_fails_an_unlabelled_one(
    page: Page, site: str
) -> None:
    await page.goto(site + "/good")
    assert await axe_violations(page) == []
    await page.goto(site + "/bad")
    found = {v["id"] for v in await axe_violations(page)}
    assert {"label", "button-name"} <= found, describe(await axe_violations(page))
