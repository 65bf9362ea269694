"""Inbound messages: what partners publish on ``vi.inbound``.

These models describe the *shape* of each message. Rules that need outside facts
(the 11-proef, the youth's age, the clock, the region config) live in
:mod:`shared.contract.validation`, because they have error codes of their own.

Choices made where the contract leaves room:

* Strings are never produced from numbers or booleans: ``"bsn": 111222333`` is a
  ``schema`` error, not a BSN.
* ``melding_ref``: 1-64 characters, none of them a control, format, line-break or
  whitespace character other than the plain ASCII space (see
  :mod:`shared.contract.patterns`). It is used exactly as sent, without trimming.
* Names, surnames, phone numbers and the deferral reason lose leading and trailing
  whitespace (Unicode's White_Space) and may not contain control, format or
  line/paragraph separator characters (they end up in e-mails and stored records).
  Only the deferral reason, a free-text note, may contain line breaks and tabs.
* ``reporter.phone`` may be absent, ``null`` or blank; all three mean "no phone".
* Timestamps: ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` followed by ``Z`` or ``+HH:MM`` /
  ``-HH:MM``. Seconds may be left out and up to 9 fraction digits are accepted
  (finer than microseconds is cut off). A timestamp without offset is rejected.
* Dates and timestamps must fall in the years 1900-2999; nothing real in this
  system lies outside, and it keeps calendar arithmetic safe from overflow.

Every text, date and time field is checked with a pattern from
:mod:`shared.contract.patterns`, which the published JSON Schema carries unchanged,
so the schema accepts exactly the shapes the index accepts.
"""

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from shared.contract import patterns
from shared.dates import InformTarget

# Errors raised by the validators in this module carry a type with this prefix and a
# fixed message written here, never a copy of the input, so the front door may pass
# the message on to partners as it is.
OWN_ERROR_PREFIX: Final = "vi_"

MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2999


def _own_error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(OWN_ERROR_PREFIX + kind, message)


# --- text ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Matches:
    """Field metadata: the value must match ``pattern`` (searched, as a JSON Schema
    validator does), and the field's JSON Schema carries the same pattern.

    ``explain`` turns a value that does not match into the message for the partner;
    it names the kind of problem and never quotes the value.
    """

    pattern: str
    explain: Callable[[str], str]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        compiled = re.compile(self.pattern)

        def check(value: str) -> str:
            if compiled.search(value) is None:
                raise _own_error("invalid", self.explain(value))
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "pattern": self.pattern}


def _saying(message: str) -> Callable[[str], str]:
    return lambda _value: message


_FORBIDDEN_CHAR: Final = re.compile(patterns.char_class(patterns.FORBIDDEN))
_NOTE_FORBIDDEN_CHAR: Final = re.compile(
    patterns.char_class(patterns.FORBIDDEN, allowing=patterns.NOTE_BREAKS)
)


def _text_problem(max_length: int, *, note: bool = False) -> Callable[[str], str]:
    forbidden = _NOTE_FORBIDDEN_CHAR if note else _FORBIDDEN_CHAR

    def explain(value: str) -> str:
        text = _trim(value)
        if not text:
            return "must not be empty"
        if forbidden.search(text):
            if note:
                return "must not contain control characters"
            return "must not contain control or line-break characters"
        return f"must be at most {max_length} characters"

    return explain


def _trim(value: str) -> str:
    return value.strip(patterns.WHITESPACE_CHARS)


def _blank_as_absent(value: object) -> object:
    if isinstance(value, str) and not _trim(value):
        return None
    return value


def normalise_surname(surname: str) -> str:
    """The form in which surnames are compared to identify a youth without a BSN.

    Case does not matter, accents do, and leading, trailing and repeated whitespace
    is ignored. Unicode is brought to NFC first so that "é" typed as one character
    or as "e" plus a combining accent compares equal.
    """
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", surname).casefold())
    return " ".join(folded.split())


# --- dates and timestamps -----------------------------------------------------------

_DATE: Final = re.compile(patterns.DATE)
_TIMESTAMP: Final = re.compile(patterns.TIMESTAMP)
# The parts of a timestamp that the pattern has already checked.
_TIMESTAMP_PARTS: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])([0-9]{2}):([0-9]{2}))?"
)
_DATE_HINT: Final = "must be a date as YYYY-MM-DD"
_TIMESTAMP_HINT: Final = "must be an ISO 8601 timestamp with offset: YYYY-MM-DDThh:mm:ss+hh:mm"
_YEAR_HINT: Final = f"year must lie between {MIN_YEAR} and {MAX_YEAR}"


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _own_error("invalid", _YEAR_HINT)


def _date_problem(value: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return _DATE_HINT
    if not MIN_YEAR <= int(value[:4]) <= MAX_YEAR:
        return _YEAR_HINT
    return "is not an existing calendar date"


def _parse_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        _check_year(value.year)
        return value
    if not isinstance(value, str):
        raise _own_error("invalid", _DATE_HINT)
    if _DATE.search(value) is None:
        raise _own_error("invalid", _date_problem(value))
    return date.fromisoformat(value)


def _timestamp_problem(value: str) -> str:
    match = _TIMESTAMP_PARTS.fullmatch(value)
    if match is None:
        return _TIMESTAMP_HINT
    if match["utc"] is None and match["sign"] is None:
        return "must include a UTC offset (Z or +HH:MM)"
    if match["sign"] is not None and (int(match[10]) > 23 or int(match[11]) > 59):
        return "has an offset outside -23:59..+23:59"
    if not MIN_YEAR <= int(match[1]) <= MAX_YEAR:
        return _YEAR_HINT
    return "is not an existing date and time"


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise _own_error("invalid", "must include a UTC offset")
        _check_year(value.year)
        return value
    if not isinstance(value, str):
        raise _own_error("invalid", _TIMESTAMP_HINT)
    match = _TIMESTAMP_PARTS.fullmatch(value) if _TIMESTAMP.search(value) else None
    if match is None:
        raise _own_error("invalid", _timestamp_problem(value))
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if match["sign"] is not None:
        offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
        if match["sign"] == "-":
            offset = -offset
    return datetime(year, month, day, hour, minute, second, micro, timezone(offset))


# --- field types (also used on their own by the front door's rules) -----------------

# A reference chosen by a partner (melding_ref, lookup_id): 1-64 characters, used as sent.
_Reference = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=64),
    Matches(
        patterns.MELDING_REF,
        _saying("must not contain control characters or whitespace other than spaces"),
    ),
]
MeldingRef = Annotated[
    _Reference,
    Field(description="The partner's own reference: 1-64 characters, used as sent."),
]
Bsn = Annotated[
    str,
    Strict(),
    Matches(patterns.BSN, _saying("must be exactly 9 digits")),
    Field(description="Burgerservicenummer: 9 digits (the index also checks the 11-proef)."),
]
MunicipalityCode = Annotated[
    str,
    Strict(),
    Matches(patterns.MUNICIPALITY, _saying("must be exactly 4 digits")),
    Field(description="4-digit CBS municipality code (the index also checks the region)."),
]
CalendarDate = Annotated[
    date,
    BeforeValidator(_parse_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": patterns.DATE,
            "description": "YYYY-MM-DD, an existing date in the years 1900-2999.",
        }
    ),
]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    # Not "format": "date-time": RFC 3339 requires the seconds, the index does not.
    WithJsonSchema(
        {
            "type": "string",
            "pattern": patterns.TIMESTAMP,
            "description": (
                "ISO 8601 with offset: YYYY-MM-DDThh:mm[:ss[.fraction]] then Z or +hh:mm;"
                " seconds optional, years 1900-2999."
            ),
        }
    ),
]
PersonName = Annotated[
    str,
    Strict(),
    Matches(patterns.PERSON_NAME, _text_problem(200)),
    AfterValidator(_trim),
    Field(description="1-200 characters after trimming; no control or line-break characters."),
]
Surname = PersonName  # the same rules; a separate name for what it means
Email = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=254),
    Matches(patterns.EMAIL, _saying("is not a plausible e-mail address")),
]
Phone = Annotated[
    str,
    Strict(),
    Matches(patterns.PHONE, _text_problem(32)),
    AfterValidator(_trim),
    Field(description="At most 32 characters after trimming; blank means no phone."),
]
DeferredReason = Annotated[
    str,
    Strict(),
    Matches(patterns.DEFERRED_REASON, _text_problem(500, note=True)),
    AfterValidator(_trim),
    Field(description="1-500 characters after trimming; line breaks and tabs allowed."),
]
Sex = Literal["M", "F", "X"]
WithdrawReason = Literal["risk_ended", "unjustified"]


def _unique(values: list[InformTarget]) -> list[InformTarget]:
    if len(set(values)) != len(values):
        raise _own_error("invalid", "must not repeat a value")
    return values


InformedList = Annotated[
    list[InformTarget],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_unique),
]


# --- either/or fields ---------------------------------------------------------------
#
# Pydantic reports a model-level error only when every field is valid, and always at
# the model's own location. To report "give a bsn" at ``youth.bsn`` together with any
# other error in the same message, a before-validator puts a _Gap marker in place of
# the missing or conflicting field, and that field's own validator turns it into an
# error at the right location.


class _Gap:
    __slots__ = ("kind", "message")

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message


def _fail_on_gap(value: object) -> object:
    if isinstance(value, _Gap):
        raise _own_error(value.kind, value.message)
    return value


_GapAware = BeforeValidator(_fail_on_gap)


def _present(data: dict[str, Any], key: str) -> bool:
    return data.get(key) is not None


# The same either/or rules in JSON Schema: "present" means present and not null.
_NOT_NULL: Final = {"not": {"type": "null"}}


def _without_null(field_schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of an optional field (``anyOf: [X, null]``) as X alone."""
    (kept,) = [branch for branch in field_schema["anyOf"] if branch != {"type": "null"}]
    return dict(kept)


def _form(present: tuple[str, ...], absent: tuple[str, ...]) -> dict[str, Any]:
    """Schema of a form of a message: fields ``present`` given, ``absent`` not (or null)."""
    properties = {name: _NOT_NULL for name in present} | {n: {"type": "null"} for n in absent}
    return {"required": list(present), "properties": properties}


def _youth_schema(schema: dict[str, Any]) -> None:
    """With a bsn, surname and sex are dropped unseen, whatever they hold; without
    one, both are required and checked."""
    properties = schema["properties"]
    identity = {name: _without_null(properties[name]) for name in ("surname", "sex")}
    for name in identity:
        properties[name] = {
            "description": "Without a bsn: required and checked. With a bsn: ignored."
        }
    schema["if"] = {"required": ["bsn"], "properties": {"bsn": _NOT_NULL}}
    schema["else"] = {"required": list(identity), "properties": identity}


def _informed_schema(schema: dict[str, Any]) -> None:
    confirmation, deferral = ("informed", "informed_on"), ("deferred_reason",)
    schema["oneOf"] = [_form(confirmation, deferral), _form(deferral, confirmation)]


# --- models -------------------------------------------------------------------------


class InboundBase(BaseModel):
    """Common settings: unknown fields are errors, values are checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Youth(InboundBase):
    """The youth a melding is about. With a BSN, surname and sex are dropped unseen."""

    model_config = ConfigDict(json_schema_extra=_youth_schema)

    bsn: Annotated[Bsn | None, _GapAware] = None
    surname: Annotated[Surname | None, _GapAware] = None
    sex: Annotated[Sex | None, _GapAware] = None
    birth_date: CalendarDate
    municipality: MunicipalityCode

    @model_validator(mode="before")
    @classmethod
    def _settle_identity(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if _present(data, "bsn"):
            # The BSN alone identifies the youth; the rest must not be stored.
            data.pop("surname", None)
            data.pop("sex", None)
        elif not _present(data, "surname") and not _present(data, "sex"):
            data["bsn"] = _Gap("missing", "is required, or surname and sex when there is no BSN")
        elif not _present(data, "surname"):
            data["surname"] = _Gap("missing", "is required together with sex when there is no BSN")
        elif not _present(data, "sex"):
            data["sex"] = _Gap("missing", "is required together with surname when there is no BSN")
        return data


class Reporter(InboundBase):
    name: PersonName
    email: Email
    phone: Annotated[Phone | None, BeforeValidator(_blank_as_absent)] = None


class MeldingRegister(InboundBase):
    type: Literal["melding.register"]
    melding_ref: MeldingRef
    youth: Youth
    reporter: Reporter
    reported_at: Timestamp


class MeldingWithdraw(InboundBase):
    type: Literal["melding.withdraw"]
    melding_ref: MeldingRef
    reason: WithdrawReason


class RegieClaim(InboundBase):
    type: Literal["regie.claim"]
    melding_ref: MeldingRef


MatchId = Annotated[
    _Reference,
    Field(description="The match_id of a live match, as match.notice gave it."),
]
PartnerId = Annotated[
    _Reference,
    Field(description="The id of a partner with an active melding in the match."),
]


class RegieAssign(InboundBase):
    """The municipality's match coordinator gives the lead of a match to a partner
    (contract §9). Only the portal's login sends it, with header x-vi-coordinator.
    Any text of the right length is accepted as an id: an id that names no live match
    is `unknown_match`, a partner without an active melding in it `not_active`."""

    type: Literal["regie.assign"]
    match_id: MatchId
    partner: PartnerId


class MeldingInformed(InboundBase):
    """Either a confirmation (``informed`` + ``informed_on``) or a ``deferred_reason``."""

    model_config = ConfigDict(json_schema_extra=_informed_schema)

    type: Literal["melding.informed"]
    melding_ref: MeldingRef
    informed: Annotated[InformedList | None, _GapAware] = None
    informed_on: Annotated[CalendarDate | None, _GapAware] = None
    deferred_reason: Annotated[DeferredReason | None, _GapAware] = None

    @model_validator(mode="before")
    @classmethod
    def _settle_form(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        confirmed = _present(data, "informed") or _present(data, "informed_on")
        if _present(data, "deferred_reason"):
            if confirmed:
                data["deferred_reason"] = _Gap(
                    "conflict", "cannot be combined with informed and informed_on"
                )
        elif not confirmed:
            data["informed"] = _Gap("missing", "is required, or deferred_reason instead")
        elif not _present(data, "informed"):
            data["informed"] = _Gap("missing", "is required together with informed_on")
        elif not _present(data, "informed_on"):
            data["informed_on"] = _Gap("missing", "is required together with informed")
        return data


class PersonMoved(InboundBase):
    type: Literal["person.moved"]
    bsn: Bsn
    municipality: MunicipalityCode
    moved_at: Timestamp


class PersonDeceased(InboundBase):
    type: Literal["person.deceased"]
    bsn: Bsn
    died_on: CalendarDate


LookupId = Annotated[
    _Reference,
    Field(description="The lookup_id of the person.lookup this answers: 1-64 characters."),
]
BagId = Annotated[
    str,
    Strict(),
    Matches(patterns.BAG_ID, _saying("must be exactly 16 digits")),
    Field(description="BAG id of a residential address (verblijfsobject): 16 digits."),
]


class Address(InboundBase):
    """The youth's residential address as the population register knows it."""

    id: BagId
    institutional: Annotated[
        bool,
        Field(description="True for a care home, shelter or other institution: never matched."),
    ]


class PersonFamily(InboundBase):
    """Family facts from the population register: the answer to a person.lookup, or
    unasked when the register sees a change. They replace earlier facts."""

    type: Literal["person.family"]
    lookup_id: LookupId | None = None
    bsn: Bsn
    parents: Annotated[list[Bsn], Field(max_length=4, description="0-4 parents' BSNs.")]
    address: Address | None


InboundMessage = Annotated[
    MeldingRegister
    | MeldingWithdraw
    | RegieClaim
    | RegieAssign
    | MeldingInformed
    | PersonMoved
    | PersonDeceased
    | PersonFamily,
    Field(discriminator="type"),
]

INBOUND_TYPES: Final[dict[str, type[InboundBase]]] = {
    "melding.register": MeldingRegister,
    "melding.withdraw": MeldingWithdraw,
    "regie.claim": RegieClaim,
    "regie.assign": RegieAssign,
    "melding.informed": MeldingInformed,
    "person.moved": PersonMoved,
    "person.deceased": PersonDeceased,
    "person.family": PersonFamily,
}

# Contract §10: an onboarding load goes in under this routing key (the body's `type`
# stays `melding.register`) and is handled after live traffic.
ONBOARDING_ROUTING_KEY: Final = "onboard.melding.register"


def inbound_type(routing_key: str) -> str:
    """The message type a routing key asks for: the onboarding key stands for
    `melding.register`, any other key for itself."""
    return "melding.register" if routing_key == ONBOARDING_ROUTING_KEY else routing_key


def routing_keys(message_type: str) -> list[str]:
    """The routing keys a partner may publish a message type under."""
    return [
        key for key in (message_type, ONBOARDING_ROUTING_KEY) if inbound_type(key) == message_type
    ]
