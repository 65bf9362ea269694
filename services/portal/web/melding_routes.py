"""A professional's meldingen: register, list, look at one, withdraw, take the lead,
record informing the family. Every look and every action goes into the audit log."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.portal import gateway, readmodel
from services.portal.accounts import Session, User
from services.portal.auditing import audit_user
from services.portal.messages import FormErrors, form_errors, local_error
from services.portal.readmodel import Scope, Youth
from services.portal.web.context import portal_of
from services.portal.web.lookup import found_or_404
from services.portal.web.pages import render
from services.portal.web.security import (
    current_session,
    home_of,
    signed_in,
    signed_in_form,
    template_context,
    text,
    texts,
)
from services.portal.web.sending import send_and_wait, send_request

NO_ERRORS = FormErrors({}, [])


def scope_of(user: User) -> Scope:
    """An org admin sees the organisation's meldingen; a professional their own."""
    return Scope(user.partner_id, None if user.is_admin else user.id)


def new_ref(today: date) -> str:
    return f"P-{today:%Y%m%d}-{secrets.token_hex(3).upper()}"


async def home(request: Request) -> Response:
    session = await current_session(request)
    target = home_of(session.user) if session else "/inloggen"
    return RedirectResponse(target, status_code=303)


async def overview(request: Request) -> Response:
    session = await signed_in(request)
    portal = portal_of(request)
    archived = request.query_params.get("archief") == "1"
    async with portal.pool.acquire() as conn, conn.transaction():
        found = await readmodel.meldingen(conn, scope_of(session.user), archived=archived)
        await audit_user(
            conn,
            session.user,
            "portal_meldingen_listed",
            detail={"archived": archived, "refs": [m["melding_ref"] for m in found]},
        )
    region = await portal.region_config()
    context = template_context(
        session,
        session.csrf_token,
        meldingen=found,
        archived=archived,
        municipalities=region.municipalities_by_code,
    )
    return render(request, "meldingen.html", context)


async def _register_form(
    request: Request,
    session: Session,
    values: dict[str, str],
    errors: FormErrors,
    *,
    status: int = 200,
) -> Response:
    region = await portal_of(request).region_config()
    context = template_context(
        session,
        session.csrf_token,
        values=values,
        errors=errors,
        municipalities=sorted(region.municipality, key=lambda m: m.name),
    )
    return render(request, "register.html", context, status=status)


async def register_page(request: Request) -> Response:
    session = await signed_in(request)
    user = session.user
    values = {
        "reporter_name": user.name,
        "reporter_email": user.email,
        "reporter_phone": user.phone,
    }
    again = request.query_params.get("opnieuw")
    if again:
        async with portal_of(request).pool.acquire() as conn:
            earlier = await readmodel.melding(conn, scope_of(user), again)
        if earlier is not None:
            values.update(
                bsn=earlier["bsn"] or "",
                surname=earlier["surname"] or "",
                sex=earlier["sex"] or "",
                birth_date=earlier["birth_date"].isoformat() if earlier["birth_date"] else "",
                municipality=earlier["municipality"],
            )
    return await _register_form(request, session, values, NO_ERRORS)


_REGISTER_FIELDS = (
    "bsn",
    "surname",
    "sex",
    "birth_date",
    "municipality",
    "reporter_name",
    "reporter_email",
    "reporter_phone",
)


def _register_body(ref: str, values: dict[str, str], youth: Youth, now: str) -> dict[str, Any]:
    identity: dict[str, str] = (
        {"bsn": values["bsn"]}
        if values["bsn"]
        else {k: v for k, v in (("surname", values["surname"]), ("sex", values["sex"])) if v}
    )
    reporter = {"name": values["reporter_name"], "email": values["reporter_email"]}
    if values["reporter_phone"]:
        reporter["phone"] = values["reporter_phone"]
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": {
            **identity,
            "birth_date": youth.birth_date.isoformat(),
            "municipality": youth.municipality,
        },
        "reporter": reporter,
        "reported_at": now,
    }


async def register(request: Request) -> Response:
    session, form = await signed_in_form(request)
    portal = portal_of(request)
    values = {name: text(form, name, 200) for name in _REGISTER_FIELDS}
    values["bsn"] = values["bsn"].replace(" ", "").replace(".", "")
    try:
        birth_date = date.fromisoformat(values["birth_date"])
    except ValueError:
        errors = local_error("birth_date", "Vul de geboortedatum in (dag, maand en jaar).")
        return await _register_form(request, session, values, errors, status=422)
    if not values["municipality"]:
        errors = local_error("municipality", "Kies de gemeente waar de jongere woont.")
        return await _register_form(request, session, values, errors, status=422)
    now = portal.clock()
    ref = new_ref(now.date())
    youth = Youth(
        birth_date=birth_date,
        municipality=values["municipality"],
        bsn=values["bsn"] or None,
        surname=None if values["bsn"] else values["surname"] or None,
        sex=None if values["bsn"] else values["sex"] or None,
    )
    body = _register_body(ref, values, youth, now.isoformat())
    sent = gateway.new_request(session.user.partner_id, session.user.id, body)
    async with portal.pool.acquire() as conn, conn.transaction():
        await readmodel.record_registration(
            conn,
            partner_id=session.user.partner_id,
            melding_ref=ref,
            created_by=session.user.id,
            youth=youth,
            reporter=body["reporter"],
            reported_at=now,
        )
        await gateway.record(conn, sent)
        await audit_user(conn, session.user, "portal_register_sent", melding_ref=ref)
    answer = await send_and_wait(portal, sent)
    if answer is not None and answer["receipt_status"] == "rejected":
        errors = form_errors(answer["receipt_errors"])
        return await _register_form(request, session, values, errors, status=422)
    return RedirectResponse(f"/meldingen/{ref}", status_code=303)


async def _own_melding(request: Request, session: Session) -> dict[str, Any]:
    # Another organisation's melding (or a colleague's, for a professional) is not
    # there at all, as far as this user can tell.
    ref = request.path_params["ref"]
    scope = scope_of(session.user)
    return await found_or_404(request, lambda conn: readmodel.melding(conn, scope, ref))


async def detail(request: Request) -> Response:
    session = await signed_in(request)
    portal = portal_of(request)
    found = await _own_melding(request, session)
    ref = found["melding_ref"]
    async with portal.pool.acquire() as conn, conn.transaction():
        answers = await readmodel.answers(conn, session.user.partner_id, ref)
        notices = await readmodel.notices(conn, session.user.partner_id, ref)
        await audit_user(conn, session.user, "portal_melding_viewed", melding_ref=ref)
    shown = request.query_params.get("verzoek")
    latest = next((a for a in answers if str(a["message_id"]) == shown), None)
    errors = (
        form_errors(latest["receipt_errors"])
        if latest is not None and latest["receipt_status"] == "rejected"
        else NO_ERRORS
    )
    register_answer = next((a for a in answers if a["routing_key"] == "melding.register"), None)
    if found["status"] == "rejected" and register_answer is not None:
        errors = form_errors(register_answer["receipt_errors"])
    region = await portal.region_config()
    context = template_context(
        session,
        session.csrf_token,
        melding=found,
        answers=answers,
        notices=notices,
        errors=errors,
        shown=latest,
        municipalities=region.municipalities_by_code,
        today=portal.clock().date().isoformat(),
    )
    return render(request, "melding.html", context)


async def _act(request: Request, body_for: Any) -> Response:
    session, form = await signed_in_form(request)
    portal = portal_of(request)
    found = await _own_melding(request, session)
    ref = found["melding_ref"]
    body = body_for(ref, form)
    sent = gateway.new_request(session.user.partner_id, session.user.id, body)
    await send_request(portal, session.user, sent, melding_ref=ref, detail={"type": body["type"]})
    return RedirectResponse(f"/meldingen/{ref}?verzoek={sent.message_id}", status_code=303)


def _withdraw_body(ref: str, form: FormData) -> dict[str, Any]:
    return {"type": "melding.withdraw", "melding_ref": ref, "reason": text(form, "reason", 40)}


def _claim_body(ref: str, form: FormData) -> dict[str, Any]:
    return {"type": "regie.claim", "melding_ref": ref}


def _informed_body(ref: str, form: FormData) -> dict[str, Any]:
    if text(form, "kind", 20) == "deferred":
        return {
            "type": "melding.informed",
            "melding_ref": ref,
            "deferred_reason": text(form, "deferred_reason", 600),
        }
    return {
        "type": "melding.informed",
        "melding_ref": ref,
        "informed": texts(form, "informed"),
        "informed_on": text(form, "informed_on", 20),
    }


async def withdraw(request: Request) -> Response:
    return await _act(request, _withdraw_body)


async def claim(request: Request) -> Response:
    return await _act(request, _claim_body)


async def informed(request: Request) -> Response:
    return await _act(request, _informed_body)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/meldingen", overview, methods=["GET"]),
    Route("/meldingen/nieuw", register_page, methods=["GET"]),
    Route("/meldingen/nieuw", register, methods=["POST"]),
    Route("/meldingen/{ref}", detail, methods=["GET"]),
    Route("/meldingen/{ref}/intrekken", withdraw, methods=["POST"]),
    Route("/meldingen/{ref}/regie", claim, methods=["POST"]),
    Route("/meldingen/{ref}/informeren", informed, methods=["POST"]),
]
