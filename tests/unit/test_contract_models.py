import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import (
    INBOUND_TYPES,
    InboundMessage,
    MeldingInformed,
    MeldingRegister,
    MeldingWithdraw,
    PersonDeceased,
    PersonMoved,
    RegieClaim,
    Reporter,
    Youth,
    normalise_surname,
)
from shared.contract.outbound import (
    OUTBOUND_TYPES,
    Counterpart,
    InformReminder,
    LeadInfo,
    MatchEnded,
    MatchNotice,
    MeldingEnded,
    Receipt,
    RegieNotice,
    ReporterContact,
    YouthMoved,
    dump_json,
    load_outbound,
)
from shared.contract.schema_export import export_schemas
from tests.unit.examples import register_body


def error_locs(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


YOUTH_BASE = {"birth_date": "2014-05-01", "municipality": "0363"}
REPORTER_BASE = {"name": "J. de Vries", "email": "j.devries@school.example"}


def test_error_codes_are_exactly_the_contract_codes() -> None:
    assert {code.value for code in ErrorCode} == {
        "invalid_json",
        "schema",
        "unknown_type",
        "too_large",
        "missing_message_id",
        "not_authorized",
        "bsn_checksum",
        "too_old",
        "birth_date_future",
        "reported_at_future",
        "unknown_municipality",
        "already_registered",
        "duplicate_ref",
        "unknown_melding",
        "not_active",
        "no_match",
        "regie_taken",
        "unknown_person",
        "unknown_match",
    }


def test_error_item_is_frozen_and_serialises_code_as_text() -> None:
    item = ErrorItem(loc="youth.bsn", code=ErrorCode.BSN_CHECKSUM, msg="x")
    with pytest.raises(ValidationError):
        item.loc = "other"  # type: ignore[misc]
    assert json.loads(item.model_dump_json())["code"] == "bsn_checksum"


class TestMeldingRegister:
    def test_contract_example_is_valid(self) -> None:
        msg = MeldingRegister.model_validate(register_body())
        assert msg.youth.bsn == "111222333"
        assert msg.youth.birth_date == date(2014, 5, 1)
        assert msg.reported_at == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
        assert msg.reporter.phone == "+31201234567"

    def test_bsn_as_number_is_not_coerced(self) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({**YOUTH_BASE, "bsn": 111222333})
        assert error_locs(exc.value) == {"bsn"}

    @pytest.mark.parametrize("bsn", ["11122233", "1112223334", "11122233a", "١١١٢٢٢٣٣٣"])
    def test_bsn_must_be_nine_ascii_digits(self, bsn: str) -> None:
        with pytest.raises(ValidationError):
            Youth.model_validate({**YOUTH_BASE, "bsn": bsn})

    @pytest.mark.parametrize("code", ["363", "03630", "abcd", 363])
    def test_municipality_must_be_four_digits(self, code: object) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({**YOUTH_BASE, "bsn": "111222333", "municipality": code})
        assert error_locs(exc.value) == {"municipality"}

    def test_with_bsn_surname_and_sex_are_dropped_even_if_odd(self) -> None:
        youth = Youth.model_validate(
            {**YOUTH_BASE, "bsn": "111222333", "surname": "de Vries", "sex": "Q"}
        )
        assert youth.surname is None
        assert youth.sex is None

    def test_without_bsn_surname_and_sex_identify(self) -> None:
        youth = Youth.model_validate({**YOUTH_BASE, "surname": "  de Vries ", "sex": "F"})
        assert youth.bsn is None
        assert youth.surname == "de Vries"
        assert youth.sex == "F"

    def test_without_any_identity_the_error_is_at_bsn(self) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate(YOUTH_BASE)
        assert error_locs(exc.value) == {"bsn"}

    def test_surname_without_sex_blames_sex(self) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({**YOUTH_BASE, "surname": "de Vries"})
        assert error_locs(exc.value) == {"sex"}

    def test_missing_identity_reported_together_with_other_errors(self) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({"birth_date": "2014-13-01", "municipality": "0363"})
        assert error_locs(exc.value) == {"bsn", "birth_date"}

    @pytest.mark.parametrize("surname", ["", "   ", "de\nVries", "a\x00b", "x" * 201])
    def test_bad_surnames(self, surname: str) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({**YOUTH_BASE, "surname": surname, "sex": "M"})
        assert error_locs(exc.value) == {"surname"}

    @pytest.mark.parametrize("sex", ["m", "V", "", "MALE"])
    def test_sex_is_m_f_or_x(self, sex: str) -> None:
        with pytest.raises(ValidationError):
            Youth.model_validate({**YOUTH_BASE, "surname": "Jansen", "sex": sex})

    @pytest.mark.parametrize("ref", ["R", "x" * 64, "R 2026/01 ü"])
    def test_good_refs(self, ref: str) -> None:
        assert MeldingRegister.model_validate(register_body(melding_ref=ref)).melding_ref == ref

    @pytest.mark.parametrize("ref", ["", "x" * 65, "R\n1", "R\t1", "R\u200b1", "R\u00a01", 12])
    def test_bad_refs(self, ref: object) -> None:
        with pytest.raises(ValidationError) as exc:
            MeldingRegister.model_validate(register_body(melding_ref=ref))
        assert error_locs(exc.value) == {"melding_ref"}

    def test_unknown_field_is_refused(self) -> None:
        with pytest.raises(ValidationError) as exc:
            MeldingRegister.model_validate(register_body(concern="truancy"))
        assert error_locs(exc.value) == {"concern"}


class TestReporter:
    @pytest.mark.parametrize(
        "email", ["a@b.nl", "j.de-vries+vi@school.example", "x@sub.domain.example"]
    )
    def test_plausible_emails(self, email: str) -> None:
        assert Reporter.model_validate({**REPORTER_BASE, "email": email}).email == email

    @pytest.mark.parametrize(
        "email",
        [
            "",
            "no-at-sign",
            "a@b",
            "a@b.c",
            "a b@school.example",
            "a@school.example\r\nBcc: evil@x.example",
            "a@school.example\n",
            "<a@school.example>",
            "a@school.example, b@school.example",
            "a@@school.example",
            "a@school..example",
            "a\x00@school.example",
            "x" * 250 + "@b.nl",
        ],
    )
    def test_implausible_emails(self, email: str) -> None:
        with pytest.raises(ValidationError) as exc:
            Reporter.model_validate({**REPORTER_BASE, "email": email})
        assert error_locs(exc.value) == {"email"}

    @pytest.mark.parametrize("name", ["", "  ", "J.\r\nBcc: x", "a\x07b", "x" * 201, 5])
    def test_bad_names(self, name: object) -> None:
        with pytest.raises(ValidationError) as exc:
            Reporter.model_validate({**REPORTER_BASE, "name": name})
        assert error_locs(exc.value) == {"name"}

    def test_name_is_trimmed(self) -> None:
        assert Reporter.model_validate({**REPORTER_BASE, "name": " Ans "}).name == "Ans"

    @pytest.mark.parametrize("phone", [None, "", "   "])
    def test_no_phone(self, phone: str | None) -> None:
        assert Reporter.model_validate({**REPORTER_BASE, "phone": phone}).phone is None
        assert Reporter.model_validate(REPORTER_BASE).phone is None

    @pytest.mark.parametrize("phone", ["+3120\n1234567", "1" * 33, 31201234567])
    def test_bad_phones(self, phone: object) -> None:
        with pytest.raises(ValidationError) as exc:
            Reporter.model_validate({**REPORTER_BASE, "phone": phone})
        assert error_locs(exc.value) == {"phone"}


class TestTimestampsAndDates:
    @pytest.mark.parametrize(
        ("text", "expected_utc"),
        [
            ("2026-11-28T10:00:00+01:00", datetime(2026, 11, 28, 9, 0)),
            ("2026-11-28T09:00:00Z", datetime(2026, 11, 28, 9, 0)),
            ("2026-11-28T10:00+01:00", datetime(2026, 11, 28, 9, 0)),
            ("2026-11-28T04:00:00.5-05:00", datetime(2026, 11, 28, 9, 0, 0, 500000)),
            ("2026-11-28T09:00:00.123456789Z", datetime(2026, 11, 28, 9, 0, 0, 123456)),
        ],
    )
    def test_accepted_timestamps(self, text: str, expected_utc: datetime) -> None:
        parsed = MeldingRegister.model_validate(register_body(reported_at=text)).reported_at
        assert parsed.astimezone(UTC).replace(tzinfo=None) == expected_utc

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-28T10:00:00",  # naive
            "2026-11-28",
            "2026-11-28 10:00:00+01:00",
            "2026-11-28T10:00:00+24:00",
            "2026-02-30T10:00:00Z",
            "1899-12-31T10:00:00Z",
            "28-11-2026T10:00:00Z",
            "",
            1764320400,
        ],
    )
    def test_refused_timestamps(self, text: object) -> None:
        with pytest.raises(ValidationError) as exc:
            MeldingRegister.model_validate(register_body(reported_at=text))
        assert error_locs(exc.value) == {"reported_at"}

    def test_naive_python_datetime_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            PersonMoved(
                type="person.moved",
                bsn="111222333",
                municipality="0363",
                moved_at=datetime(2026, 11, 28, 10, 0),
            )

    @pytest.mark.parametrize(
        "text",
        ["2014-5-1", "2014-05-01T00:00:00", "2014-02-30", "20140501", 20140501, "3000-01-01"],
    )
    def test_refused_dates(self, text: object) -> None:
        with pytest.raises(ValidationError) as exc:
            Youth.model_validate({**YOUTH_BASE, "bsn": "111222333", "birth_date": text})
        assert error_locs(exc.value) == {"birth_date"}


class TestMeldingInformed:
    base: ClassVar[dict[str, Any]] = {"type": "melding.informed", "melding_ref": "R-1"}

    def test_confirmation(self) -> None:
        msg = MeldingInformed.model_validate(
            {**self.base, "informed": ["youth", "parents"], "informed_on": "2026-11-30"}
        )
        assert msg.informed == ["youth", "parents"]
        assert msg.informed_on == date(2026, 11, 30)
        assert msg.deferred_reason is None

    def test_deferral(self) -> None:
        msg = MeldingInformed.model_validate(
            {**self.base, "deferred_reason": "Gezin in crisis;\nlater informeren."}
        )
        assert msg.informed is None
        assert msg.deferred_reason == "Gezin in crisis;\nlater informeren."

    @pytest.mark.parametrize(
        ("extra", "loc"),
        [
            ({}, "informed"),
            ({"informed": ["parents"]}, "informed_on"),
            ({"informed_on": "2026-11-30"}, "informed"),
            (
                {"informed": ["parents"], "informed_on": "2026-11-30", "deferred_reason": "x"},
                "deferred_reason",
            ),
            ({"informed_on": "2026-11-30", "deferred_reason": "x"}, "deferred_reason"),
            ({"informed": [], "informed_on": "2026-11-30"}, "informed"),
            ({"informed": ["parents", "parents"], "informed_on": "2026-11-30"}, "informed"),
            ({"informed": ["teacher"], "informed_on": "2026-11-30"}, "informed.0"),
            ({"informed": "parents", "informed_on": "2026-11-30"}, "informed"),
            ({"deferred_reason": ""}, "deferred_reason"),
            ({"deferred_reason": "x" * 501}, "deferred_reason"),
            ({"deferred_reason": "a\x00b"}, "deferred_reason"),
        ],
    )
    def test_refused_forms(self, extra: dict[str, Any], loc: str) -> None:
        with pytest.raises(ValidationError) as exc:
            MeldingInformed.model_validate({**self.base, **extra})
        assert error_locs(exc.value) == {loc}


def test_withdraw_reason() -> None:
    base = {"type": "melding.withdraw", "melding_ref": "R-1"}
    assert MeldingWithdraw.model_validate({**base, "reason": "risk_ended"}).reason == "risk_ended"
    with pytest.raises(ValidationError):
        MeldingWithdraw.model_validate({**base, "reason": "other"})


def test_inbound_union_picks_model_by_type() -> None:
    adapter: TypeAdapter[InboundMessage] = TypeAdapter(InboundMessage)
    claim = adapter.validate_python({"type": "regie.claim", "melding_ref": "R-1"})
    assert isinstance(claim, RegieClaim)
    died = adapter.validate_python(
        {"type": "person.deceased", "bsn": "111222333", "died_on": "2026-11-01"}
    )
    assert isinstance(died, PersonDeceased)


def test_inbound_types_cover_the_contract() -> None:
    assert set(INBOUND_TYPES) == {
        "melding.register",
        "melding.withdraw",
        "regie.claim",
        "regie.assign",
        "melding.informed",
        "person.moved",
        "person.deceased",
        "person.family",
    }
    for name, model in INBOUND_TYPES.items():
        assert model.model_json_schema()["properties"]["type"]["const"] == name


class TestNormaliseSurname:
    def test_case_and_whitespace_do_not_matter(self) -> None:
        assert normalise_surname("  De   VRIES\t") == normalise_surname("de vries") == "de vries"

    def test_accents_are_kept(self) -> None:
        assert normalise_surname("Müller") == "müller"
        assert normalise_surname("Müller") != normalise_surname("Muller")

    def test_composed_and_decomposed_accents_are_equal(self) -> None:
        assert normalise_surname("Ege\u0301") == normalise_surname("Eg\u00e9")


# --- outbound -------------------------------------------------------------------------

CONTACT = ReporterContact(name="Ans", email="ans@jt.example", phone=None)


class TestReceipt:
    def test_accepted_register_carries_inform(self) -> None:
        receipt = Receipt(
            in_reply_to="m-1", status="accepted", melding_ref="R-1", inform=["youth", "parents"]
        )
        assert dump_json(receipt) == (
            b'{"type":"receipt","in_reply_to":"m-1","status":"accepted",'
            b'"melding_ref":"R-1","errors":[],"inform":["youth","parents"]}'
        )

    def test_inform_is_left_out_when_absent_but_nulls_stay(self) -> None:
        error = ErrorItem(loc="message_id", code=ErrorCode.MISSING_MESSAGE_ID, msg="required")
        body = json.loads(dump_json(Receipt(in_reply_to=None, status="rejected", errors=[error])))
        assert "inform" not in body
        assert body["in_reply_to"] is None
        assert body["melding_ref"] is None
        assert body["errors"] == [
            {"loc": "message_id", "code": "missing_message_id", "msg": "required"}
        ]

    def test_rejection_needs_errors(self) -> None:
        with pytest.raises(ValidationError):
            Receipt(in_reply_to="m-1", status="rejected")

    def test_inform_only_on_accepted(self) -> None:
        with pytest.raises(ValidationError):
            Receipt(in_reply_to="m-1", status="duplicate", inform=["youth"])


def test_match_notice_round_trip_keeps_phone_null_and_lead_null() -> None:
    notice = MatchNotice(
        match_id="g-1",
        melding_ref="R-1",
        counterparts=[
            Counterpart(
                partner="jt-noord",
                organisation="Jeugdteam Noord",
                sector="jeugdhulp",
                reporter=CONTACT,
                registered_at=datetime(2026, 11, 28, 10, 0, tzinfo=timezone(timedelta(hours=1))),
                archived=True,
            )
        ],
    )
    raw = dump_json(notice)
    body = json.loads(raw)
    assert body["lead"] is None
    assert body["counterparts"][0]["reporter"]["phone"] is None
    assert body["counterparts"][0]["registered_at"] == "2026-11-28T10:00:00+01:00"
    assert load_outbound(raw) == notice


def test_other_outbound_messages_serialise_with_their_type() -> None:
    lead = LeadInfo(partner="jt-noord", organisation="Jeugdteam Noord", reporter=CONTACT)
    messages = [
        RegieNotice(match_id="g-1", melding_ref="R-1", lead=lead, escalated=False),
        RegieNotice(match_id="g-1", melding_ref="R-1", lead=None, escalated=True),
        MeldingEnded(melding_ref="R-1", reason="age_limit"),
        MatchEnded(match_id="g-1", melding_ref="R-1"),
        InformReminder(melding_ref="R-1", inform=["parents"]),
        YouthMoved(melding_ref="R-1", municipality="0599"),
    ]
    for message in messages:
        raw = dump_json(message)
        assert b" " not in raw.replace(b"Jeugdteam Noord", b"")  # compact
        assert load_outbound(raw) == message
        assert json.loads(raw)["type"] in OUTBOUND_TYPES


def _property_names(schema: dict[str, Any]) -> set[str]:
    names = set(schema.get("properties", {}))
    for sub in schema.get("$defs", {}).values():
        names |= set(sub.get("properties", {}))
    return names


def test_outbound_models_never_have_identity_fields() -> None:
    for name, model in OUTBOUND_TYPES.items():
        names = _property_names(model.model_json_schema())
        # The one exception (contract §8): person.lookup asks a register about a BSN.
        allowed = {"bsn"} if name == "person.lookup" else set()
        assert names & {"bsn", "surname", "sex", "birth_date"} == allowed, name


def test_export_schemas(tmp_path: Path) -> None:
    written = export_schemas(tmp_path / "schemas")
    names = {path.name for path in written}
    expected = {f"{t}.schema.json" for t in [*INBOUND_TYPES, *OUTBOUND_TYPES]}
    assert names == expected | {"index.json"}
    index = json.loads((tmp_path / "schemas" / "index.json").read_text())
    assert {entry["schema"] for entry in index["messages"]} == expected
    keys = {e["type"]: e.get("routing_keys") for e in index["messages"]}
    # Contract §10: an onboarding load publishes melding.register under its own key.
    assert keys["melding.register"] == ["melding.register", "onboard.melding.register"]
    assert keys["person.moved"] == ["person.moved"]
    assert keys["receipt"] is None
    register = json.loads((tmp_path / "schemas" / "melding.register.schema.json").read_text())
    assert register["$schema"].startswith("https://json-schema.org/")
    assert register["additionalProperties"] is False
    receipt = json.loads((tmp_path / "schemas" / "receipt.schema.json").read_text())
    assert "unknown_person" in receipt["$defs"]["ErrorCode"]["enum"]
