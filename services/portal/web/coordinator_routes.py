"""The municipal match coordinator's workbench: the matches of their municipalities
(escalated first), assigning the lead, recording follow-up, and who takes part.
Every look and every action goes into the audit log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from services.portal import chart, coordination, gateway, participation
from services.portal.accounts import Session
from services.portal.auditing import audit_user
from services.portal.coordination import Match
from services.portal.messages import coordinator_dutch
from services.portal.web.context import portal_of
from services.portal.web.lookup import found_or_404, uuid_param
from services.portal.web.pages import render
from services.portal.web.security import signed_in, signed_in_form, template_context, text
from services.portal.web.sending import send_request
from shared.dates import amsterdam_date
from shared.region.model import PORTAL_ID


async def _coordinator(request: Request) -> Session:
    return await signed_in(request, coordinator=True)


async def _own_match(request: Request, session: Session) -> Match:
    """A match of the coordinator's municipalities; one elsewhere is not found."""
    match_id = uuid_param(request, "match_id")
    region = await portal_of(request).region_config()
    municipalities = session.user.municipalities
    return await found_or_404(
        request, lambda conn: coordination.match(conn, region, municipalities, match_id)
    )


async def matches_page(request: Request) -> Response:
    session = await _coordinator(request)
    portal = portal_of(request)
    region = await portal.region_config()
    async with portal.pool.acquire() as conn, conn.transaction():
        found = await coordination.matches(conn, region, session.user.municipalities)
        sent = await coordination.assignments(conn, [m.match_id for m in found])
        await audit_user(
            conn,
            session.user,
            "portal_matches_listed",
            detail={"matches": [str(m.match_id) for m in found]},
        )
    today = amsterdam_date(portal.clock())
    answers = {
        match_id: {
            "partner": a.partner,
            "status": a.status,
            "errors": [coordinator_dutch(e) for e in a.errors],
        }
        for match_id, a in sent.items()
    }
    context = template_context(
        session,
        session.csrf_token,
        open_matches=[m for m in found if m.open],
        ended_matches=[m for m in found if not m.open],
        answers=answers,
        today=today,
        followup_days=portal.settings.followup_days,
        municipalities=region.municipalities_by_code,
        partners=region.partners_by_id,
    )
    return render(request, "coordinator.html", context)


async def assign(request: Request) -> Response:
    session, form = await signed_in_form(request, coordinator=True)
    portal = portal_of(request)
    found = await _own_match(request, session)
    partner = text(form, "partner", 40)
    if not partner:
        raise HTTPException(422)
    body = {"type": "regie.assign", "match_id": str(found.match_id), "partner": partner}
    sent = gateway.coordinator_request(PORTAL_ID, found.municipality, session.user.id, body)
    detail = {"type": "regie.assign", "partner": partner}
    await send_request(portal, session.user, sent, match_id=found.match_id, detail=detail)
    return RedirectResponse(f"/coordinatie#match-{found.match_id}", status_code=303)


async def followed_up(request: Request) -> Response:
    session, _ = await signed_in_form(request, coordinator=True)
    portal = portal_of(request)
    found = await _own_match(request, session)
    async with portal.pool.acquire() as conn, conn.transaction():
        if await coordination.record_followup(
            conn, found.match_id, session.user.id, portal.clock()
        ):
            await audit_user(
                conn, session.user, "portal_match_followed_up", match_id=found.match_id
            )
    return RedirectResponse(f"/coordinatie#match-{found.match_id}", status_code=303)


def _codes(request: Request, session: Session) -> list[str]:
    """The municipalities asked for (`?gemeente=`), within the coordinator's own."""
    asked = request.query_params.get("gemeente")
    if not asked:
        return list(session.user.municipalities)
    if asked not in session.user.municipalities:
        raise HTTPException(404)
    return [asked]


async def participation_page(request: Request) -> Response:
    session = await _coordinator(request)
    portal = portal_of(request)
    region = await portal.region_config()
    codes = _codes(request, session)
    today = amsterdam_date(portal.clock())
    async with portal.pool.acquire() as conn, conn.transaction():
        organisations = await participation.per_organisation(conn, region, codes)
        months = await participation.monthly(conn, codes, today)
        await audit_user(
            conn, session.user, "portal_participation_viewed", detail={"municipalities": codes}
        )
    names = ", ".join(
        region.municipalities_by_code[c].name if c in region.municipalities_by_code else c
        for c in codes
    )
    context = template_context(
        session,
        session.csrf_token,
        organisations=organisations,
        sectors=participation.per_sector(organisations),
        months=months,
        svg=chart.monthly_svg(months, title=f"Meldingen en matches per maand, {names}"),
        names=names,
        chosen=request.query_params.get("gemeente", ""),
        municipalities=region.municipalities_by_code,
    )
    return render(request, "participation.html", context)


async def participation_csv(request: Request) -> Response:
    session = await _coordinator(request)
    portal = portal_of(request)
    region = await portal.region_config()
    codes = _codes(request, session)
    async with portal.pool.acquire() as conn, conn.transaction():
        organisations = await participation.per_organisation(conn, region, codes)
        await audit_user(
            conn, session.user, "portal_participation_exported", detail={"municipalities": codes}
        )
    return Response(
        participation.to_csv(organisations),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="deelname.csv"'},
    )


ROUTES = [
    Route("/coordinatie", matches_page, methods=["GET"]),
    Route("/coordinatie/matches/{match_id}/regie", assign, methods=["POST"]),
    Route("/coordinatie/matches/{match_id}/afgestemd", followed_up, methods=["POST"]),
    Route("/coordinatie/deelname", participation_page, methods=["GET"]),
    Route("/coordinatie/deelname.csv", participation_csv, methods=["GET"]),
]
