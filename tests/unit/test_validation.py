import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest

from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import MeldingRegister, PersonMoved
from shared.contract.validation import (
    Invalid,
    Valid,
    ValidationOutcome,
    check_message_id,
    passes_11_proef,
    validate_inbound,
)
from tests.unit.examples import register_body

AMSTERDAM_WINTER = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=AMSTERDAM_WINTER)
MUNICIPALITIES = frozenset({"0363", "0599"})
REPORTER = frozenset({"reporter"})
REGISTER = frozenset({"population_register"})
COORDINATOR = frozenset({"coordinator"})


def youth(**fields: Any) -> dict[str, Any]:
    return {"bsn": "111222333", "birth_date": "2014-05-01", "municipality": "0363", **fields}


def check(
    routing_key: str,
    body: dict[str, Any] | bytes,
    *,
    roles: frozenset[str] = REPORTER,
    now: datetime = NOW,
    max_bytes: int = 65536,
) -> ValidationOutcome:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return validate_inbound(
        routing_key, raw, roles=roles, municipalities=MUNICIPALITIES, now=now, max_bytes=max_bytes
    )


def rejected(outcome: ValidationOutcome) -> list[ErrorItem]:
    assert isinstance(outcome, Invalid), outcome
    assert outcome.errors
    return outcome.errors


def codes(outcome: ValidationOutcome) -> set[tuple[str, str]]:
    return {(e.loc, e.code.value) for e in rejected(outcome)}


# --- accepted messages ----------------------------------------------------------------


def test_contract_example_is_accepted() -> None:
    outcome = check("melding.register", register_body())
    assert isinstance(outcome, Valid)
    assert isinstance(outcome.message, MeldingRegister)
    assert outcome.melding_ref == "R-2026-0001"


def test_youth_without_bsn_is_accepted() -> None:
    body = register_body(
        youth={"surname": "Jansen", "sex": "X", "birth_date": "2014-05-01", "municipality": "0599"}
    )
    assert isinstance(check("melding.register", body), Valid)


def test_population_register_may_report_a_move() -> None:
    body = {
        "type": "person.moved",
        "bsn": "111222333",
        "municipality": "0599",
        "moved_at": "2026-11-01T00:00:00+01:00",
    }
    outcome = check("person.moved", body, roles=REGISTER)
    assert isinstance(outcome, Valid)
    assert isinstance(outcome.message, PersonMoved)
    assert outcome.melding_ref is None


@pytest.mark.parametrize(
    ("routing_key", "body"),
    [
        (
            "melding.withdraw",
            {"type": "melding.withdraw", "melding_ref": "R", "reason": "unjustified"},
        ),
        ("regie.claim", {"type": "regie.claim", "melding_ref": "R"}),
        (
            "melding.informed",
            {"type": "melding.informed", "melding_ref": "R", "deferred_reason": "later"},
        ),
    ],
)
def test_other_reporter_messages_are_accepted(routing_key: str, body: dict[str, Any]) -> None:
    assert isinstance(check(routing_key, body), Valid)


# --- envelope errors ------------------------------------------------------------------


def test_too_large() -> None:
    body = json.dumps(register_body()).encode()
    assert codes(check("melding.register", body, max_bytes=len(body) - 1)) == {
        ("body", "too_large")
    }
    assert isinstance(check("melding.register", body, max_bytes=len(body)), Valid)


def test_default_limit_is_64_kib() -> None:
    padded = b" " * (65536 - 2) + b"{}"
    assert ("body", "too_large") not in codes(check("regie.claim", padded))
    assert codes(check("regie.claim", padded + b" ")) == {("body", "too_large")}


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{}",
        b'{"type": "regie.claim", "melding_ref": "\xc3"}',
        b"",
        b"not json",
        b'{"type": "regie.claim",}',
        b"[]",
        b'"just a string"',
        b"null",
        b'{"type": "regie.claim", "melding_ref": NaN}',
        b'{"type": "regie.claim", "melding_ref": "a", "melding_ref": "b"}',
        b'{"type": "regie.claim", "melding_ref": "\\ud800"}',
        b"[" * 20000 + b"]" * 20000,
        b'{"a": ' * 5000 + b"1" + b"}" * 5000,
        b'{"type": "regie.claim", "melding_ref": ' + b"9" * 5000 + b"}",
        json.dumps(register_body()).encode("utf-16"),
    ],
)
def test_invalid_json(body: bytes) -> None:
    assert codes(check("regie.claim", body)) == {("body", "invalid_json")}


def test_unknown_type() -> None:
    assert codes(check("melding.delete", {"type": "melding.delete"})) == {("type", "unknown_type")}


def test_unknown_type_and_invalid_json_are_reported_together() -> None:
    assert codes(check("melding.delete", b"{")) == {
        ("type", "unknown_type"),
        ("body", "invalid_json"),
    }


@pytest.mark.parametrize(
    ("routing_key", "roles"),
    [
        ("person.moved", REPORTER),
        ("person.deceased", REPORTER),
        ("melding.register", REGISTER),
        ("regie.claim", REGISTER),
        ("melding.register", frozenset()),
        ("regie.assign", REPORTER | REGISTER),
        ("melding.register", COORDINATOR),
        ("regie.claim", COORDINATOR),
    ],
)
def test_not_authorized(routing_key: str, roles: frozenset[str]) -> None:
    outcome = check(routing_key, {"type": routing_key}, roles=roles)
    assert codes(outcome) == {("type", "not_authorized")}


def test_regie_assign_from_the_coordinator() -> None:
    body = {"type": "regie.assign", "match_id": "5b0f1c9e-7a43", "partner": "jeugdteam"}
    outcome = check("regie.assign", body, roles=COORDINATOR)
    assert isinstance(outcome, Valid) and outcome.melding_ref is None
    # The ids are looked up by the matcher; only their form is checked here.
    assert codes(check("regie.assign", {**body, "match_id": ""}, roles=COORDINATOR)) == {
        ("match_id", "schema")
    }
    assert codes(check("regie.assign", {**body, "partner": 7}, roles=COORDINATOR)) == {
        ("partner", "schema")
    }


def test_body_type_must_equal_routing_key() -> None:
    outcome = check("melding.withdraw", {"type": "regie.claim", "melding_ref": "R", "reason": "x"})
    assert ("type", "schema") in codes(outcome)
    outcome = check("regie.claim", {"melding_ref": "R"})
    assert codes(outcome) == {("type", "schema")}


class TestMessageId:
    @pytest.mark.parametrize("message_id", [None, ""])
    def test_missing(self, message_id: str | None) -> None:
        error = check_message_id(message_id)
        assert error is not None
        assert (error.loc, error.code) == ("message_id", ErrorCode.MISSING_MESSAGE_ID)

    def test_length_bounds(self) -> None:
        assert check_message_id("m") is None
        assert check_message_id("m" * 128) is None
        error = check_message_id("m" * 129)
        assert error is not None
        assert (error.loc, error.code) == ("message_id", ErrorCode.SCHEMA)

    def test_control_characters(self) -> None:
        error = check_message_id("m\x00")
        assert error is not None
        assert error.code == ErrorCode.SCHEMA


# --- schema errors --------------------------------------------------------------------


def test_schema_locs_are_dotted_paths() -> None:
    body = register_body(
        youth={"birth_date": "2014-05-01", "municipality": "0363"},
        reporter={"name": "J", "email": "not-an-address"},
    )
    assert codes(check("melding.register", body)) == {
        ("youth.bsn", "schema"),
        ("reporter.email", "schema"),
    }


def test_unknown_key_that_looks_like_data_is_not_echoed() -> None:
    body = register_body(**{"111222333": "x", "note": "y"})
    locs = {e.loc for e in rejected(check("melding.register", body))}
    assert locs == {"<unknown>", "note"}


def test_numbers_are_not_turned_into_strings() -> None:
    body = register_body(melding_ref=12, youth=youth(bsn=111222333))
    assert codes(check("melding.register", body)) == {
        ("melding_ref", "schema"),
        ("youth.bsn", "schema"),
    }


# --- business rules -------------------------------------------------------------------


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999999990"])
def test_11_proef_valid(bsn: str) -> None:
    assert passes_11_proef(bsn)


@pytest.mark.parametrize("bsn", ["111222334", "123456789", "000000000", "12345678", "11122233x"])
def test_11_proef_invalid(bsn: str) -> None:
    assert not passes_11_proef(bsn)


def test_bsn_checksum_on_register() -> None:
    outcome = check("melding.register", register_body(youth=youth(bsn="111222334")))
    assert codes(outcome) == {("youth.bsn", "bsn_checksum")}
    assert "111222334" not in rejected(outcome)[0].msg


@pytest.mark.parametrize(
    ("routing_key", "body"),
    [
        (
            "person.moved",
            {
                "type": "person.moved",
                "bsn": "000000000",
                "municipality": "0599",
                "moved_at": "2026-11-01T00:00:00Z",
            },
        ),
        (
            "person.deceased",
            {"type": "person.deceased", "bsn": "123456789", "died_on": "2026-11-01"},
        ),
    ],
)
def test_bsn_checksum_on_person_messages(routing_key: str, body: dict[str, Any]) -> None:
    assert codes(check(routing_key, body, roles=REGISTER)) == {("bsn", "bsn_checksum")}


def test_unknown_municipality() -> None:
    outcome = check("melding.register", register_body(youth=youth(municipality="0001")))
    assert codes(outcome) == {("youth.municipality", "unknown_municipality")}
    move = {
        "type": "person.moved",
        "bsn": "111222333",
        "municipality": "9999",
        "moved_at": "2026-11-01T00:00:00Z",
    }
    assert codes(check("person.moved", move, roles=REGISTER)) == {
        ("municipality", "unknown_municipality")
    }


class TestAgeLimit:
    def test_day_before_23rd_birthday_is_accepted(self) -> None:
        body = register_body(youth=youth(birth_date="2003-11-29"))
        assert isinstance(check("melding.register", body), Valid)

    def test_on_23rd_birthday_is_too_old(self) -> None:
        body = register_body(youth=youth(birth_date="2003-11-28"))
        assert codes(check("melding.register", body)) == {("youth.birth_date", "too_old")}

    def test_age_is_judged_on_the_amsterdam_date(self) -> None:
        # 23:30 UTC on 27 November is already 28 November in Amsterdam.
        body = register_body(
            youth=youth(birth_date="2003-11-28"), reported_at="2026-11-27T23:30:00Z"
        )
        assert codes(check("melding.register", body)) == {("youth.birth_date", "too_old")}
        body["reported_at"] = "2026-11-27T22:30:00Z"
        assert isinstance(check("melding.register", body), Valid)

    @pytest.mark.parametrize(
        ("reported_at", "accepted"),
        [("2027-02-27T12:00:00+01:00", True), ("2027-02-28T12:00:00+01:00", False)],
    )
    def test_leap_day_birth(self, reported_at: str, accepted: bool) -> None:
        body = register_body(youth=youth(birth_date="2004-02-29"), reported_at=reported_at)
        now = datetime.fromisoformat(reported_at)
        outcome = check("melding.register", body, now=now)
        assert isinstance(outcome, Valid) is accepted
        if not accepted:
            assert codes(outcome) == {("youth.birth_date", "too_old")}

    def test_onboarding_old_melding_judges_age_on_reported_at(self) -> None:
        # 25 now, but 21 when the melding was made: accepted.
        body = register_body(
            youth=youth(birth_date="2001-06-01"), reported_at="2022-06-01T09:00:00+02:00"
        )
        assert isinstance(check("melding.register", body), Valid)


def test_birth_date_after_reported_at() -> None:
    body = register_body(youth=youth(birth_date="2026-11-29"))
    assert codes(check("melding.register", body)) == {("youth.birth_date", "birth_date_future")}
    body = register_body(youth=youth(birth_date="2026-11-28"))  # born that day
    assert isinstance(check("melding.register", body), Valid)


class TestReportedAtFuture:
    def test_exactly_five_minutes_ahead_is_accepted(self) -> None:
        ahead = (NOW + timedelta(minutes=5)).isoformat()
        assert isinstance(check("melding.register", register_body(reported_at=ahead)), Valid)

    def test_one_second_more_is_refused(self) -> None:
        ahead = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
        outcome = check("melding.register", register_body(reported_at=ahead))
        assert codes(outcome) == {("reported_at", "reported_at_future")}

    def test_offsets_are_compared_as_instants(self) -> None:
        in_utc = (NOW + timedelta(minutes=4)).astimezone(UTC).isoformat()
        assert isinstance(check("melding.register", register_body(reported_at=in_utc)), Valid)


class TestInformedOn:
    base: ClassVar[dict[str, Any]] = {
        "type": "melding.informed",
        "melding_ref": "R",
        "informed": ["youth"],
    }

    def test_today_in_amsterdam_is_fine(self) -> None:
        late_evening_utc = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)  # 29th in NL
        body = {**self.base, "informed_on": "2026-11-29"}
        assert isinstance(check("melding.informed", body, now=late_evening_utc), Valid)

    def test_future_is_a_schema_error(self) -> None:
        body = {**self.base, "informed_on": "2026-11-29"}
        assert codes(check("melding.informed", body)) == {("informed_on", "schema")}

    def test_both_forms_is_a_schema_error(self) -> None:
        body = {**self.base, "informed_on": "2026-11-28", "deferred_reason": "x"}
        assert codes(check("melding.informed", body)) == {("deferred_reason", "schema")}


def test_death_in_the_future_is_refused() -> None:
    body = {"type": "person.deceased", "bsn": "111222333", "died_on": "2026-11-29"}
    assert codes(check("person.deceased", body, roles=REGISTER)) == {("died_on", "schema")}


# --- everything together --------------------------------------------------------------


def test_all_errors_are_reported_together() -> None:
    body = register_body(
        youth={"bsn": "111222334", "birth_date": "1990-01-01", "municipality": "0001"},
        reporter={"name": "J\r\nBcc: x", "email": "a@b"},
        reported_at=(NOW + timedelta(hours=1)).isoformat(),
        extra="x",
    )
    outcome = check("melding.register", body)
    assert codes(outcome) == {
        ("youth.bsn", "bsn_checksum"),
        ("youth.birth_date", "too_old"),
        ("youth.municipality", "unknown_municipality"),
        ("reported_at", "reported_at_future"),
        ("reporter.name", "schema"),
        ("reporter.email", "schema"),
        ("extra", "schema"),
    }
    assert isinstance(outcome, Invalid)
    assert outcome.melding_ref == "R-2026-0001"


def test_rules_still_run_when_the_youth_has_a_schema_error() -> None:
    body = register_body(youth=youth(bsn="111222334", surname=None, favourite_colour="blue"))
    assert codes(check("melding.register", body)) == {
        ("youth.bsn", "bsn_checksum"),
        ("youth.favourite_colour", "schema"),
    }


def test_messages_never_quote_personal_data() -> None:
    body = register_body(
        youth={
            "surname": "Vermeulen-Zwart\n",
            "sex": "Q",
            "birth_date": "1990-02-30",
            "municipality": "0363",
        },
        reported_at="2026-11-28T10:00:00",
    )
    for error in rejected(check("melding.register", body)):
        for secret in ("Vermeulen", "1990-02-30", "1990"):
            assert secret not in error.msg
    body = register_body(youth=youth(bsn="987654321", birth_date="1995-03-04"))
    for error in rejected(check("melding.register", body)):
        assert "987654321" not in error.msg
        assert "1995-03-04" not in error.msg


class TestRefEcho:
    def test_valid_ref_is_echoed_on_rejection(self) -> None:
        outcome = check("melding.register", register_body(reporter={}))
        assert isinstance(outcome, Invalid)
        assert outcome.melding_ref == "R-2026-0001"

    def test_ref_is_echoed_on_authorisation_failure(self) -> None:
        outcome = check("melding.register", register_body(), roles=REGISTER)
        assert isinstance(outcome, Invalid)
        assert outcome.melding_ref == "R-2026-0001"

    @pytest.mark.parametrize("ref", [12, "x" * 65, "R\n1", ""])
    def test_invalid_ref_is_not_echoed(self, ref: object) -> None:
        outcome = check("melding.register", register_body(melding_ref=ref))
        assert isinstance(outcome, Invalid)
        assert outcome.melding_ref is None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        validate_inbound(
            "regie.claim", b"{}", roles=REPORTER, municipalities=(), now=datetime(2026, 1, 1)
        )


# --- free text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("Jan de Vries", True),
        ("Chloë Özdemir-Ça\u011flar", True),  # letters outside ASCII are fine
        ("Jan\x00", False),
        ("Jan\x1b[31m", False),  # an ANSI escape
        ("Jan\x7f", False),
        ("Jan\nde Vries", False),
        ("Jan\tde Vries", False),
        ("Chloë\u202eseirV", False),  # a bidi override
        ("Chloë\u2028Vries", False),  # a line separator
        ("Chloë\x85Vries", False),  # a C1 control character
    ],
)
def test_plain_text_refuses_control_and_line_break_characters(name: str, accepted: bool) -> None:
    body = register_body(
        reporter={"name": name, "email": "j.devries@school.example", "phone": "+31201234567"}
    )
    outcome = check("melding.register", body)
    if accepted:
        assert isinstance(outcome, Valid), outcome
    else:
        assert codes(outcome) == {("reporter.name", "schema")}
