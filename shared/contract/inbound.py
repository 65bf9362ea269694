"""Inbound messages: what partners publish on ``vi.inbound``.

These models describe the *shape* of each message. Rules that need outside facts
(the 11-proef, the youth's age, the clock, the region config) live in
:mod:`shared.contract.validation`, because they have error codes of their own.

Choices made where the contract leaves room:

* Strings are never produced from numbers or booleans: ``"bsn": 111222333`` is a
  ``schema`` error, not a BSN.
* ``melding_ref``: 1-64 characters, all printable in the sense of
  :meth:`str.isprintable` (no control, format or line-break characters and no space
  other than the plain ASCII space). It is used exactly as sent, without trimming.
* Names, surnames, phone numbers and the deferral reason lose leading and trailing
  whitespace and may not contain control, format, surrogate or line/paragraph
  separator characters (they end up in e-mails and stored records). Only the
  deferral reason, a free-text note, may contain line breaks and tabs.
* ``reporter.phone`` may be absent, ``null`` or blank; all three mean "no phone".
* Timestamps: ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` followed by ``Z`` or ``+HH:MM`` /
  ``-HH:MM``. Seconds may be left out and up to 9 fraction digits are accepted
  (finer than microseconds is cut off). A timestamp without offset is rejected.
* Dates and timestamps must fall in the years 1900-2999; nothing real in this
  system lies outside, and it keeps calendar arithmetic safe from overflow.
"""

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.dates import InformTarget

# Errors raised by the validators in this module carry a type with this prefix and a
# fixed message written here, never a copy of the input, so the front door may pass
# the message on to partners as it is.
OWN_ERROR_PREFIX: Final = "vi_"

MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2999

BSN_PATTERN: Final = r"^[0-9]{9}$"
MUNICIPALITY_PATTERN: Final = r"^[0-9]{4}$"
# Deliberately loose: one "@", no whitespace, and nothing that has a meaning in a
# mail header (<>()[],;:"\) so an address can never smuggle in a second recipient.
_EMAIL_ATOM: Final = r"""[^\s@<>()\[\],;:"\\.]"""
EMAIL_PATTERN: Final = (
    r"""^[^\s@<>()\[\],;:"\\]{1,64}@""" + rf"(?:{_EMAIL_ATOM}+\.)+{_EMAIL_ATOM}{{2,}}$"
)

# Messages for pattern mismatches, keyed by the pattern itself.
PATTERN_MESSAGES: Final[dict[str, str]] = {
    BSN_PATTERN: "must be exactly 9 digits",
    MUNICIPALITY_PATTERN: "must be exactly 4 digits",
    EMAIL_PATTERN: "is not a plausible e-mail address",
}


def _own_error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(OWN_ERROR_PREFIX + kind, message)


# --- text ---------------------------------------------------------------------------

# Control, format (e.g. bidi overrides), surrogate, line and paragraph separators.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOTE_ALLOWED: Final = frozenset("\n\r\t")


# In ASCII only the control characters (category Cc) are forbidden.
_ASCII_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _has_forbidden_char(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    if value.isascii():  # the usual case, checked without a look-up per character
        return any(ch not in allowed for ch in _ASCII_CONTROL.findall(value))
    return any(
        unicodedata.category(ch) in _FORBIDDEN_CATEGORIES and ch not in allowed for ch in value
    )


def _plain_text(value: str) -> str:
    if _has_forbidden_char(value):
        raise _own_error("invalid", "must not contain control or line-break characters")
    return value


def _note_text(value: str) -> str:
    if _has_forbidden_char(value, _NOTE_ALLOWED):
        raise _own_error("invalid", "must not contain control characters")
    return value


def _printable_ref(value: str) -> str:
    if not value.isprintable():
        raise _own_error("invalid", "must contain printable characters only")
    return value


def _blank_as_absent(value: object) -> object:
    if isinstance(value, str) and not value.strip():
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

_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])([0-9]{2}):([0-9]{2}))?"
)
_DATE_HINT: Final = "must be a date as YYYY-MM-DD"
_TIMESTAMP_HINT: Final = "must be an ISO 8601 timestamp with offset: YYYY-MM-DDThh:mm:ss+hh:mm"


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _own_error("invalid", f"year must lie between {MIN_YEAR} and {MAX_YEAR}")


def _parse_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        _check_year(value.year)
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise _own_error("invalid", _DATE_HINT)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _own_error("invalid", "is not an existing calendar date") from None
    _check_year(parsed.year)
    return parsed


def _parse_timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise _own_error("invalid", "must include a UTC offset")
        _check_year(value.year)
        return value
    match = _TIMESTAMP_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _own_error("invalid", _TIMESTAMP_HINT)
    if match["utc"] is None and match["sign"] is None:
        raise _own_error("invalid", "must include a UTC offset (Z or +HH:MM)")
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    micro = int((match[7] or "0")[:6].ljust(6, "0"))
    offset = timedelta(0)
    if match["sign"] is not None:
        off_hours, off_minutes = int(match[10]), int(match[11])
        if off_hours > 23 or off_minutes > 59:
            raise _own_error("invalid", "has an offset outside -23:59..+23:59")
        offset = timedelta(hours=off_hours, minutes=off_minutes)
        if match["sign"] == "-":
            offset = -offset
    try:
        parsed = datetime(year, month, day, hour, minute, second, micro, timezone(offset))
    except ValueError:
        raise _own_error("invalid", "is not an existing date and time") from None
    _check_year(parsed.year)
    return parsed


# --- field types (also used on their own by the front door's rules) -----------------

MeldingRef = Annotated[
    str,
    Strict(),
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_printable_ref),
    Field(description="The partner's own reference: 1-64 printable characters."),
]
Bsn = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=BSN_PATTERN),
    Field(description="Burgerservicenummer: 9 digits that pass the 11-proef."),
]
MunicipalityCode = Annotated[
    str,
    Strict(),
    StringConstraints(pattern=MUNICIPALITY_PATTERN),
    Field(description="4-digit CBS municipality code, known in the region config."),
]
CalendarDate = Annotated[date, BeforeValidator(_parse_date)]
Timestamp = Annotated[
    datetime,
    BeforeValidator(_parse_timestamp),
    Field(description="ISO 8601 with offset (Z or +HH:MM); seconds optional."),
]
PersonName = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_text),
]
Surname = PersonName  # the same rules; a separate name for what it means
Email = Annotated[
    str,
    Strict(),
    StringConstraints(max_length=254, pattern=EMAIL_PATTERN),
    AfterValidator(_plain_text),
]
Phone = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    AfterValidator(_plain_text),
]
DeferredReason = Annotated[
    str,
    Strict(),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_note_text),
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


# --- models -------------------------------------------------------------------------


class InboundBase(BaseModel):
    """Common settings: unknown fields are errors, values are checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Youth(InboundBase):
    """The youth a melding is about. With a BSN, surname and sex are dropped unseen."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["bsn"]}, {"required": ["surname", "sex"]}]}
    )

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


class MeldingInformed(InboundBase):
    """Either a confirmation (``informed`` + ``informed_on``) or a ``deferred_reason``."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["informed", "informed_on"]},
                {"required": ["deferred_reason"]},
            ]
        }
    )

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


InboundMessage = Annotated[
    MeldingRegister | MeldingWithdraw | RegieClaim | MeldingInformed | PersonMoved | PersonDeceased,
    Field(discriminator="type"),
]

INBOUND_TYPES: Final[dict[str, type[InboundBase]]] = {
    "melding.register": MeldingRegister,
    "melding.withdraw": MeldingWithdraw,
    "regie.claim": RegieClaim,
    "melding.informed": MeldingInformed,
    "person.moved": PersonMoved,
    "person.deceased": PersonDeceased,
}
