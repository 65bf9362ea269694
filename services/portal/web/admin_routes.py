"""An organisation's admin manages its portal accounts: invite, disable."""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.portal import accounts
from services.portal.accounts import AccountExists, Role, Session
from services.portal.auditing import audit_user
from services.portal.web.context import portal_of
from services.portal.web.lookup import uuid_param
from services.portal.web.pages import render
from services.portal.web.security import signed_in, signed_in_form, template_context, text

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def activation_link(base_url: str, token: str) -> str:
    return f"{base_url}/activeren/{token}"


def _admin(session: Session) -> Session:
    if not session.user.is_admin:
        raise HTTPException(403)
    return session


async def _page(
    request: Request,
    session: Session,
    *,
    status: int = 200,
    **values: object,
) -> Response:
    async with portal_of(request).pool.acquire() as conn:
        users = await accounts.users_of(conn, session.user.partner_id)
    context = template_context(session, session.csrf_token, users=users, **values)
    return render(request, "users.html", context, status=status)


async def users_page(request: Request) -> Response:
    return await _page(request, _admin(await signed_in(request)))


async def invite(request: Request) -> Response:
    session, form = await signed_in_form(request)
    _admin(session)
    portal = portal_of(request)
    email, name = text(form, "email", 254), text(form, "name", 200)
    role_raw = text(form, "role", 20)
    errors: dict[str, str] = {}
    if not EMAIL.match(email):
        errors["email"] = "Vul een geldig e-mailadres in."
    if role_raw not in {r.value for r in Role}:
        errors["role"] = "Kies een rol."
    if errors:
        return await _page(request, session, status=422, errors=errors, email=email, name=name)
    try:
        async with portal.pool.acquire() as conn, conn.transaction():
            invited, token = await accounts.invite(
                conn,
                partner_id=session.user.partner_id,
                email=email,
                role=Role(role_raw),
                name=name,
                now=portal.clock(),
                valid_days=portal.settings.activation_days,
                invited_by=session.user.id,
            )
            await audit_user(
                conn, session.user, "portal_user_invited", detail={"invited": invited.actor}
            )
    except AccountExists:
        errors["email"] = "Er bestaat al een account met dit e-mailadres."
        return await _page(request, session, status=422, errors=errors, email=email, name=name)
    link = activation_link(portal.settings.base_url, token)
    return await _page(request, session, invited=invited, link=link)


async def disable(request: Request) -> Response:
    session, _ = await signed_in_form(request)
    _admin(session)
    portal = portal_of(request)
    target = uuid_param(request, "user_id")
    if target == session.user.id:
        return await _page(
            request, session, status=422, notice="U kunt uw eigen account niet blokkeren."
        )
    async with portal.pool.acquire() as conn, conn.transaction():
        done = await accounts.disable(conn, session.user.partner_id, target)
        if done:
            await audit_user(
                conn, session.user, "portal_user_disabled", detail={"disabled": str(target)}
            )
    if not done:
        raise HTTPException(404)
    return await _page(request, session, notice="Het account is geblokkeerd.")


ROUTES = [
    Route("/beheer", users_page, methods=["GET"]),
    Route("/beheer/uitnodigen", invite, methods=["POST"]),
    Route("/beheer/gebruikers/{user_id}/blokkeren", disable, methods=["POST"]),
]
