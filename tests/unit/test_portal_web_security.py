"""CSRF checks on form posts and the security headers on every response."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from services.portal.web.security import CsrfRefused, SecurityHeaders, checked_form

TOKEN = "expected-token-value"


async def _post(request: Request) -> Response:
    form = await checked_form(request, TOKEN)
    return PlainTextResponse(f"ok {form.get('name')}")


async def _away(request: Request) -> Response:
    return RedirectResponse("/elders", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("refused", status_code=403)


def _app(*, https: bool = True) -> Starlette:
    return Starlette(
        routes=[Route("/", _post, methods=["POST"]), Route("/weg", _away)],
        middleware=[Middleware(SecurityHeaders, https=https)],
        exception_handlers={CsrfRefused: _refused},
    )


def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://portal.test")


async def test_a_form_post_needs_its_csrf_token() -> None:
    async with _client(_app()) as client:
        missing = await client.post("/", data={"name": "x"})
        wrong = await client.post("/", data={"name": "x", "csrf": TOKEN + "x"})
        empty = await client.post("/", data={"name": "x", "csrf": ""})
        right = await client.post("/", data={"name": "x", "csrf": TOKEN})
    assert (missing.status_code, wrong.status_code, empty.status_code) == (403, 403, 403)
    assert right.status_code == 200 and right.text == "ok x"


async def test_every_response_carries_the_security_headers() -> None:
    async with _client(_app()) as client:
        for response in (
            await client.get("/weg"),
            await client.post("/", data={}),
            await client.get("/nergens"),
        ):
            csp = response.headers["content-security-policy"]
            assert "script-src" not in csp and "default-src 'none'" in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_plain_http_development_gets_no_hsts() -> None:
    async with _client(_app(https=False)) as client:
        response = await client.get("/weg")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-frame-options"] == "DENY"
