"""Logging in (password and TOTP code), logging out, and activating an account."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.portal import accounts, credentials, metrics
from services.portal.auditing import UNKNOWN_ACTOR, audit_user
from services.portal.web.context import portal_of
from services.portal.web.pages import render
from services.portal.web.security import (
    anonymous_csrf,
    checked_form,
    clear_cookie,
    csrf_cookie,
    current_session,
    home_of,
    session_cookie,
    set_cookie,
    signed_in_form,
    template_context,
    text,
)
from shared.db.journal import Journal

LOGIN_FAILED = "Inloggen is niet gelukt. Controleer uw e-mailadres, wachtwoord en verificatiecode."


def _locked(minutes: int) -> str:
    return (
        "Dit account is tijdelijk geblokkeerd na te veel mislukte pogingen. "
        f"Probeer het over {minutes} minuten opnieuw, of vraag uw beheerder om hulp."
    )


def _address_refused(minutes: int) -> str:
    return (
        "Er zijn te veel mislukte inlogpogingen gedaan vanaf dit netwerk. "
        f"Probeer het over {minutes} minuten opnieuw, of vraag uw beheerder om hulp."
    )


def client_address(request: Request) -> str:
    """The address the request came from: behind a reverse proxy the one it forwarded,
    when uvicorn trusts that proxy (FORWARDED_ALLOW_IPS, see docs/portal.md)."""
    return request.client.host if request.client is not None else "unknown"


async def login_page(request: Request) -> Response:
    session = await current_session(request)
    if session is not None:
        return RedirectResponse(home_of(session.user), status_code=303)
    return render(request, "login.html", template_context(None, anonymous_csrf(request)))


async def login(request: Request) -> Response:
    portal = portal_of(request)
    form = await checked_form(request, request.cookies.get(csrf_cookie(request)))
    email = text(form, "email", 254)
    now = portal.clock()
    address = client_address(request)
    async with portal.pool.acquire() as conn, conn.transaction():
        if await accounts.address_refused(conn, address, portal.policy, now):
            # Not even checked: a guess from here would tell nothing either way.
            journal = Journal()
            journal.audit("portal_login_refused", UNKNOWN_ACTOR, detail={"address": address})
            await journal.write(conn)
            refused = True
        else:
            refused = False
    if refused:
        metrics.LOGINS.labels("address_refused").inc()
        minutes = portal.policy.address_window_minutes
        context = template_context(
            None, anonymous_csrf(request), error=_address_refused(minutes), email=email
        )
        response = render(request, "login.html", context, status=429)
        response.headers["Retry-After"] = str(minutes * 60)
        return response
    async with portal.pool.acquire() as conn, conn.transaction():
        result = await accounts.check_login(
            conn,
            email,
            text(form, "password", 1000),
            text(form, "code", 20),
            portal.policy,
            now,
        )
        if result.user is None:
            journal = Journal()
            journal.audit(
                "portal_login_failed",
                UNKNOWN_ACTOR,
                detail={
                    "portal_user": str(result.user_id) if result.user_id else None,
                    "outcome": result.outcome,
                },
            )
            await journal.write(conn)
            await accounts.count_address_failure(conn, address, portal.policy, now)
            token = None
        else:
            await audit_user(conn, result.user, "portal_login")
            token = await accounts.start_session(conn, result.user.id, now)
    metrics.LOGINS.labels(result.outcome).inc()
    if token is None:
        error = _locked(portal.policy.lock_minutes) if result.outcome == "locked" else LOGIN_FAILED
        context = template_context(None, anonymous_csrf(request), error=error, email=email)
        return render(request, "login.html", context, status=401)
    assert result.user is not None
    response = RedirectResponse(home_of(result.user), status_code=303)
    set_cookie(request, response, session_cookie(request), token)
    return response


async def logout(request: Request) -> Response:
    session, _ = await signed_in_form(request, coordinator=None)
    portal = portal_of(request)
    token = request.cookies.get(session_cookie(request), "")
    async with portal.pool.acquire() as conn:
        await accounts.end_session(conn, token)
        await audit_user(conn, session.user, "portal_logout")
    response = RedirectResponse("/inloggen", status_code=303)
    clear_cookie(request, response, session_cookie(request))
    return response


async def _activation_context(request: Request, token: str) -> dict[str, object] | None:
    portal = portal_of(request)
    async with portal.pool.acquire() as conn:
        user = await accounts.invited_user(conn, token, portal.clock())
        if user is None:
            return None
        secret = await accounts.totp_secret_for_activation(conn, user.id)
    uri = credentials.provisioning_uri(secret, user.email)
    return {
        "invited": user,
        "secret": secret,
        "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr": credentials.qr_svg(uri),
        "name": user.name,
        "phone": user.phone,
    }


def _activation_gone(request: Request) -> Response:
    """The page for an activation link that is used, expired or never was."""
    return render(
        request, "activation_gone.html", template_context(None, anonymous_csrf(request)), status=404
    )


async def activation_page(request: Request) -> Response:
    token = request.path_params["token"]
    found = await _activation_context(request, token)
    if found is None:
        return _activation_gone(request)
    return render(
        request, "activate.html", template_context(None, anonymous_csrf(request), **found)
    )


async def activate(request: Request) -> Response:
    portal = portal_of(request)
    token = request.path_params["token"]
    form = await checked_form(request, request.cookies.get(csrf_cookie(request)))
    found = await _activation_context(request, token)
    if found is None:
        return _activation_gone(request)
    name, phone = text(form, "name", 200), text(form, "phone", 40)
    password = text(form, "password", 1000)
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Vul uw naam in."
    problem = credentials.password_problem(password, text(form, "password_repeat", 1000))
    if problem:
        errors["password"] = problem
    now = portal.clock()
    step = credentials.accepted_totp_step(str(found["secret"]), text(form, "code", 20), now, None)
    if step is None:
        errors["code"] = (
            "Deze code klopt niet. Voeg de sleutel toe aan uw authenticator-app en vul de "
            "code in die de app nu toont."
        )
    if errors:
        found.update(name=name, phone=phone)
        context = template_context(None, anonymous_csrf(request), errors=errors, **found)
        return render(request, "activate.html", context, status=422)
    invited = found["invited"]
    assert isinstance(invited, accounts.User)
    async with portal.pool.acquire() as conn, conn.transaction():
        await accounts.activate(
            conn,
            invited.id,
            name=name,
            phone=phone,
            password_hash=credentials.hash_password(password),
            totp_step=step or 0,
            now=now,
        )
        await audit_user(conn, invited, "portal_account_activated")
    return RedirectResponse("/inloggen?geactiveerd=1", status_code=303)


ROUTES = [
    Route("/inloggen", login_page, methods=["GET"]),
    Route("/inloggen", login, methods=["POST"]),
    Route("/uitloggen", logout, methods=["POST"]),
    Route("/activeren/{token}", activation_page, methods=["GET"]),
    Route("/activeren/{token}", activate, methods=["POST"]),
]
