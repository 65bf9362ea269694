"""Cookies, sessions, CSRF and the security headers of every response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.portal import accounts, credentials
from services.portal.accounts import Session, User
from services.portal.web.context import portal_of

# No script at all, styles only from our own stylesheet, no framing, forms post only
# to the portal itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}
HSTS = "max-age=31536000"

CSRF_FIELD = "csrf"


class SecurityHeaders:
    """Adds the security headers to every response (pages, redirects, errors)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if https:
            self.headers["strict-transport-security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode())
                    for k, v in self.headers.items()
                    if k.encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class NotSignedIn(Exception):
    """The page needs a signed-in user; answered with a redirect to the login page."""


class CsrfRefused(Exception):
    """A form post without its valid CSRF token; answered 403."""


def session_cookie(request: Request) -> str:
    return portal_of(request).settings.cookie_prefix + "vi_session"


def csrf_cookie(request: Request) -> str:
    return portal_of(request).settings.cookie_prefix + "vi_csrf"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        secure=not portal_of(request).settings.insecure_cookies,
        samesite="strict",
        path="/",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        httponly=True,
        secure=not portal_of(request).settings.insecure_cookies,
        samesite="strict",
    )


async def current_session(request: Request) -> Session | None:
    """The signed-in session of this request, once per request."""
    if "portal_session" in request.scope:
        found: Session | None = request.scope["portal_session"]
        return found
    token = request.cookies.get(session_cookie(request))
    session = None
    if token:
        portal = portal_of(request)
        async with portal.pool.acquire() as conn:
            session = await accounts.current_session(conn, token, portal.policy, portal.clock())
    request.scope["portal_session"] = session
    return session


async def signed_in(request: Request, *, coordinator: bool | None = False) -> Session:
    """The signed-in session; 403 unless its account's kind fits the page: the
    organisations' pages are not the coordinator's, and the other way round
    (`coordinator=None`: any account, as for logging out)."""
    session = await current_session(request)
    if session is None:
        raise NotSignedIn
    if coordinator is not None and session.user.is_coordinator is not coordinator:
        raise HTTPException(403)
    return session


def home_of(user: User) -> str:
    """Where an account starts after logging in."""
    return "/coordinatie" if user.is_coordinator else "/meldingen"


def anonymous_csrf(request: Request) -> str:
    """The CSRF token of a visitor who is not signed in (login, activation): a random
    value in a strict cookie that the form must repeat (double submit)."""
    token = request.cookies.get(csrf_cookie(request))
    if not token:
        token = request.scope.get("portal_new_csrf") or credentials.new_token()
        request.scope["portal_new_csrf"] = token
    return token


def remember_anonymous_csrf(request: Request, response: Response) -> None:
    new = request.scope.get("portal_new_csrf")
    if new:
        set_cookie(request, response, csrf_cookie(request), new)


async def checked_form(request: Request, expected: str | None) -> FormData:
    """The posted form, once its CSRF token matched `expected`."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not credentials.tokens_equal(expected, given if isinstance(given, str) else None):
        raise CsrfRefused
    return form


async def signed_in_form(
    request: Request, *, coordinator: bool | None = False
) -> tuple[Session, FormData]:
    session = await signed_in(request, coordinator=coordinator)
    return session, await checked_form(request, session.csrf_token)


def text(form: FormData, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def texts(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str)]


def template_context(session: Session | None, csrf: str, **values: Any) -> dict[str, Any]:
    return {"session": session, "user": session.user if session else None, "csrf": csrf, **values}
