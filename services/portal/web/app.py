"""The portal's ASGI application."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from services.portal.web import admin_routes, auth_routes, coordinator_routes, melding_routes
from services.portal.web.context import Portal
from services.portal.web.pages import render
from services.portal.web.security import (
    CsrfRefused,
    NotSignedIn,
    SecurityHeaders,
    anonymous_csrf,
    current_session,
    template_context,
)

STATIC = Path(__file__).resolve().parent.parent / "static"

_ERROR_TEXT = {
    403: ("Geen toegang", "U hebt geen toegang tot deze pagina."),
    404: ("Niet gevonden", "Deze pagina of melding bestaat niet, of u hebt er geen toegang toe."),
    405: ("Niet toegestaan", "Deze handeling is hier niet mogelijk."),
}


async def _not_signed_in(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/inloggen", status_code=303)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    session = await current_session(request)
    context = template_context(
        session,
        session.csrf_token if session else anonymous_csrf(request),
        title="Formulier verlopen",
        text="Het formulier is verlopen of niet via de portal verstuurd. "
        "Ga terug, vernieuw de pagina en probeer het opnieuw.",
    )
    return render(request, "error.html", context, status=403)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    title, text = _ERROR_TEXT.get(exc.status_code, ("Fout", "Er ging iets mis."))
    session = await current_session(request)
    context = template_context(
        session,
        session.csrf_token if session else anonymous_csrf(request),
        title=title,
        text=text,
    )
    return render(request, "error.html", context, status=exc.status_code)


def create_app(portal: Portal) -> Starlette:
    app = Starlette(
        routes=[
            *melding_routes.ROUTES,
            *auth_routes.ROUTES,
            *admin_routes.ROUTES,
            *coordinator_routes.ROUTES,
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders, https=not portal.settings.insecure_cookies)],
        exception_handlers={
            NotSignedIn: _not_signed_in,
            CsrfRefused: _csrf_refused,
            HTTPException: _http_error,
        },
    )
    app.state.portal = portal
    return app
