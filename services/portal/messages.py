"""The index's error codes as Dutch messages for the portal's forms, each placed
beside the field it concerns. Free of I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Where an error's `loc` (a path into the message) appears in the portal's forms.
FIELD_OF_LOC = {
    "youth.bsn": "bsn",
    "youth.surname": "surname",
    "youth.sex": "sex",
    "youth.birth_date": "birth_date",
    "youth.municipality": "municipality",
    "reporter.name": "reporter_name",
    "reporter.email": "reporter_email",
    "reporter.phone": "reporter_phone",
    "reason": "reason",
    "informed": "informed",
    "informed_on": "informed_on",
    "deferred_reason": "deferred_reason",
}

# A schema error means the field does not fit: say what does.
_SCHEMA_BY_FIELD = {
    "bsn": "Vul een BSN van 9 cijfers in, of laat het leeg en vul achternaam en geslacht in.",
    "surname": "Vul de achternaam in (nodig als de jongere geen BSN heeft).",
    "sex": "Kies het geslacht (nodig als de jongere geen BSN heeft).",
    "birth_date": "Vul een geldige geboortedatum in.",
    "municipality": "Kies een gemeente uit de lijst.",
    "reporter_name": "Vul uw naam in.",
    "reporter_email": "Vul een geldig e-mailadres in.",
    "reporter_phone": "Vul een geldig telefoonnummer in, bijvoorbeeld +31201234567.",
    "reason": "Kies een reden.",
    "informed": "Kies wie u hebt geïnformeerd: de jongere, de ouders of beiden.",
    "informed_on": "Vul een datum in die niet in de toekomst ligt.",
    "deferred_reason": "Geef een reden van 1 tot 500 tekens.",
}

_BY_CODE = {
    "bsn_checksum": "Dit BSN bestaat niet: het voldoet niet aan de elfproef. "
    "Controleer de cijfers.",
    "too_old": "De jongere is 23 jaar of ouder. De verwijsindex is voor jongeren tot 23 jaar.",
    "birth_date_future": "De geboortedatum ligt in de toekomst.",
    "reported_at_future": "Het tijdstip van de melding ligt in de toekomst. "
    "Controleer de klok van uw computer en probeer het opnieuw.",
    "unknown_municipality": "Deze gemeente hoort niet bij de regio. "
    "Kies een gemeente uit de lijst.",
    "duplicate_ref": "Dit meldingsnummer is al eerder gebruikt. Probeer het opnieuw.",
    "unknown_melding": "Deze melding is niet bekend bij de verwijsindex.",
    "not_active": "Deze melding is niet (meer) actief.",
    "no_match": "Er is geen match met een andere actieve melding, dus ook geen regie om te nemen.",
    "regie_taken": "Een andere organisatie heeft de regie al genomen.",
    "unknown_match": "Deze match bestaat niet (meer).",
    "unknown_person": "Over deze persoon is niets bekend in de verwijsindex.",
    "not_authorized": "Uw organisatie mag dit niet (meer) doen via de verwijsindex. "
    "Neem contact op met de beheerder van de regio.",
    "invalid_json": "Het bericht kon niet worden gelezen. Probeer het opnieuw; "
    "blijft dit gebeuren, meld het dan aan de beheerder.",
    "unknown_type": "De verwijsindex kent deze handeling niet. Meld dit aan de beheerder.",
    "too_large": "Het bericht is te groot. Maak de ingevulde teksten korter.",
    "missing_message_id": "Het bericht miste een kenmerk. Probeer het opnieuw.",
}


@dataclass(frozen=True)
class FormErrors:
    """Dutch messages per form field, and those that concern no one field."""

    by_field: Mapping[str, list[str]]
    general: list[str]

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general)


def field_for(loc: str) -> str | None:
    return FIELD_OF_LOC.get(loc)


def dutch(error: Mapping[str, Any]) -> str:
    """One error of a receipt (`{"loc", "code", "msg"}`) in plain Dutch."""
    code = str(error.get("code", ""))
    loc = str(error.get("loc", ""))
    if code == "already_registered":
        ref = str(error.get("msg", "")).rpartition(": ")[2].strip()
        known = f" ({ref})" if ref else ""
        return (
            f"Uw organisatie heeft al een actieve melding{known} op deze jongere. "
            "Een tweede melding is niet nodig."
        )
    if code == "schema":
        field = field_for(loc)
        if field in _SCHEMA_BY_FIELD:
            return _SCHEMA_BY_FIELD[field]
        return "Het formulier is niet goed ingevuld. Controleer de velden en probeer het opnieuw."
    return _BY_CODE.get(code, f"De verwijsindex weigerde dit (code {code or 'onbekend'}).")


# A coordinator's request (regie.assign) refused: said for the coordinator, who acts
# for a municipality, not an organisation.
_COORDINATOR_BY_CODE = {
    "not_authorized": "Deze jongere woont niet (meer) in uw gemeente: "
    "u kunt hier de regie niet toewijzen.",
    "not_active": "Deze organisatie heeft geen actieve melding (meer) in deze match. "
    "Kies een organisatie met een actieve melding.",
    "unknown_match": "Deze match bestaat niet (meer): hij is beëindigd of verwijderd.",
}


def coordinator_dutch(error: Mapping[str, Any]) -> str:
    return _COORDINATOR_BY_CODE.get(str(error.get("code", ""))) or dutch(error)


def form_errors(errors: Iterable[Mapping[str, Any]]) -> FormErrors:
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for error in errors:
        text = dutch(error)
        field = field_for(str(error.get("loc", "")))
        target = by_field.setdefault(field, []) if field else general
        if text not in target:
            target.append(text)
    return FormErrors(by_field, general)


def local_error(field: str, text: str) -> FormErrors:
    """A problem the portal finds itself, before asking the index."""
    return FormErrors({field: [text]}, [])
