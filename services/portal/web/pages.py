"""Rendering: the Jinja2 environment and the Dutch words for the index's values."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from services.portal.web.security import remember_anonymous_csrf
from shared.stats_report import suppress

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

STATUS = {
    "pending": "In behandeling",
    "active": "Actief",
    "rejected": "Niet geregistreerd",
    "withdrawn": "Ingetrokken",
    "ended": "Beëindigd",
}
ENDED_REASON = {
    "risk_ended": "zorg is weggenomen",
    "unjustified": "melding was onterecht",
    "expired": "verlopen na twee jaar",
    "age_limit": "jongere is 23 geworden",
    "deceased": "jongere is overleden",
    "erased": "gegevens gewist op verzoek",
}
SECTOR = {
    "jeugdhulp": "Jeugdhulp",
    "jgz": "Jeugdgezondheidszorg",
    "zorg": "Zorg",
    "onderwijs": "Onderwijs",
    "wmo": "Wmo",
    "werk_inkomen": "Werk en inkomen",
    "politie_justitie": "Politie en justitie",
    "gemeente": "Gemeente",
}
INFORM = {"youth": "de jongere", "parents": "de ouders"}
SEX = {"M": "Man", "F": "Vrouw", "X": "Anders / onbekend"}
REQUEST = {
    "melding.register": "Registreren",
    "melding.withdraw": "Intrekken",
    "regie.claim": "Regie nemen",
    "melding.informed": "Informeren vastleggen",
}
ANSWER = {"accepted": "Geaccepteerd", "rejected": "Geweigerd", "duplicate": "Al verwerkt"}
NOTICE = {
    "match.notice": "Match met een andere organisatie",
    "regie.notice": "Regie gewijzigd",
    "match.ended": "Match beëindigd",
    "melding.ended": "Melding beëindigd",
    "inform.reminder": "Herinnering: informeer de jongere of de ouders",
    "youth.moved": "Jongere is verhuisd",
    "family.notice": "Gezinsmatch",
}


def dutch_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(AMSTERDAM).strftime("%d-%m-%Y %H:%M")
    return value.strftime("%d-%m-%Y")


def inform_list(values: list[str] | None) -> str:
    return " en ".join(INFORM.get(v, v) for v in values or [])


templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters.update(
    datum=dutch_date,
    status=lambda v: STATUS.get(v, v),
    reden=lambda v: ENDED_REASON.get(v, v or ""),
    sector=lambda v: SECTOR.get(v, v),
    informeren=inform_list,
    geslacht=lambda v: SEX.get(v, v or ""),
    verzoek=lambda v: REQUEST.get(v, v),
    antwoord=lambda v: ANSWER.get(v, "Wacht op antwoord") if v else "Wacht op antwoord",
    bericht=lambda v: NOTICE.get(v, v),
    klein=suppress,
)


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    remember_anonymous_csrf(request, response)
    return response
