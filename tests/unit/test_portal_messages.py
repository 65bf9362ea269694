"""The index's error codes as Dutch messages beside the portal's form fields."""

from __future__ import annotations

from services.portal.messages import FIELD_OF_LOC, dutch, form_errors
from shared.contract.errors import ErrorCode


def test_every_error_code_of_the_contract_has_a_dutch_message() -> None:
    for code in [*ErrorCode, "unknown_match"]:
        text = dutch({"loc": "body", "code": str(code), "msg": "x"})
        assert "code " not in text, f"{code} has no message of its own"


def test_errors_land_beside_the_fields_they_concern() -> None:
    errors = form_errors(
        [
            {"loc": "youth.bsn", "code": "bsn_checksum", "msg": "fails the 11-proef"},
            {"loc": "youth.municipality", "code": "unknown_municipality", "msg": "not here"},
            {"loc": "reported_at", "code": "reported_at_future", "msg": "in the future"},
        ]
    )
    assert errors.by_field["bsn"] == [
        "Dit BSN bestaat niet: het voldoet niet aan de elfproef. Controleer de cijfers."
    ]
    assert "gemeente" in errors.by_field["municipality"][0]
    assert errors.general == [
        "Het tijdstip van de melding ligt in de toekomst. "
        "Controleer de klok van uw computer en probeer het opnieuw."
    ]


def test_a_schema_error_says_what_the_field_needs() -> None:
    errors = form_errors([{"loc": "youth.birth_date", "code": "schema", "msg": "bad date"}])
    assert errors.by_field == {"birth_date": ["Vul een geldige geboortedatum in."]}
    unknown_place = form_errors([{"loc": "body", "code": "schema", "msg": "bad"}])
    assert unknown_place.general and not unknown_place.by_field


def test_already_registered_names_the_existing_melding() -> None:
    text = dutch(
        {
            "loc": "youth",
            "code": "already_registered",
            "msg": "your organisation already has an active melding on this youth: P-1",
        }
    )
    assert "(P-1)" in text and "al een actieve melding" in text


def test_the_same_message_twice_is_shown_once_and_no_errors_is_falsy() -> None:
    twice = [{"loc": "youth.bsn", "code": "schema", "msg": "a"}] * 2
    assert form_errors(twice).by_field["bsn"] and len(form_errors(twice).by_field["bsn"]) == 1
    assert not form_errors([])


def test_every_mapped_field_is_a_form_field_with_a_schema_message() -> None:
    for loc, field in FIELD_OF_LOC.items():
        assert not dutch({"loc": loc, "code": "schema", "msg": ""}).startswith("Het formulier")
        assert field
