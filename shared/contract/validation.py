"""The front door: turn one inbound delivery into a checked message or a list of errors.

Pure functions, no I/O. :func:`validate_inbound` never raises on any body, however
hostile; everything wrong with a message is reported in one go, so a partner fixes
it in one round trip. The rules that need stored state (duplicate refs, unknown
meldingen, ...) are checked later by the services.

The shape of a message (fields, types, nulls, lengths, characters, dates and times)
is judged by the contract models, and the published JSON Schemas say exactly the
same. The rules below the models (the 11-proef, the age limit, the clock, the region's
municipalities) are this module's own; no static schema can hold them.

Locations of errors that concern the message as a whole: ``body`` (too large, not
JSON), ``type`` (unknown type, not authorised, body type differs from the routing
key) and ``message_id``.

No ``msg`` produced here quotes a value from the message: they are built from the
kind of error and the field, so a BSN, surname or birth date never reaches a receipt
or a log line through them.
"""

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar, cast

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import (
    INBOUND_TYPES,
    OWN_ERROR_PREFIX,
    Bsn,
    CalendarDate,
    InboundMessage,
    MeldingRef,
    MunicipalityCode,
    Timestamp,
)
from shared.dates import age_on, amsterdam_date

MAX_BODY_BYTES: Final = 65536
MAX_MESSAGE_ID_CHARS: Final = 128
AGE_LIMIT: Final = 23
# How far a partner's clock may run ahead of ours before reported_at is refused.
MAX_CLOCK_AHEAD: Final = timedelta(minutes=5)

REPORTER: Final = "reporter"
POPULATION_REGISTER: Final = "population_register"
# Not a partner's role: the portal's login speaking for a municipality's match
# coordinator (header x-vi-coordinator, contract §9) has it, and only that sender.
COORDINATOR: Final = "coordinator"
REQUIRED_ROLE: Final[Mapping[str, str]] = {
    "melding.register": REPORTER,
    "melding.withdraw": REPORTER,
    "melding.informed": REPORTER,
    "regie.claim": REPORTER,
    "regie.assign": COORDINATOR,
    "person.moved": POPULATION_REGISTER,
    "person.deceased": POPULATION_REGISTER,
    "person.family": POPULATION_REGISTER,
}


@dataclass(frozen=True, slots=True)
class Valid:
    message: InboundMessage

    @property
    def melding_ref(self) -> str | None:
        ref = getattr(self.message, "melding_ref", None)
        return ref if isinstance(ref, str) else None


@dataclass(frozen=True, slots=True)
class Invalid:
    errors: list[ErrorItem]
    # The body's melding_ref when it could be read and is itself valid; an invalid
    # ref is not echoed (it could be huge or carry odd characters into partner logs).
    melding_ref: str | None = None


ValidationOutcome = Valid | Invalid


def _error(loc: str, code: ErrorCode, msg: str) -> ErrorItem:
    return ErrorItem(loc=loc, code=code, msg=msg)


# --- message_id (an AMQP property, checked by the caller) ---------------------------


def check_message_id(message_id: str | None) -> ErrorItem | None:
    """The problem with a message_id, if any: absent/empty, too long or control chars.

    Control characters are refused because the id is stored and echoed back.
    """
    if not message_id:
        return _error("message_id", ErrorCode.MISSING_MESSAGE_ID, "message_id is required")
    if len(message_id) > MAX_MESSAGE_ID_CHARS:
        return _error(
            "message_id", ErrorCode.SCHEMA, f"must be at most {MAX_MESSAGE_ID_CHARS} characters"
        )
    if not message_id.isprintable():
        return _error("message_id", ErrorCode.SCHEMA, "must contain printable characters only")
    return None


# --- BSN ----------------------------------------------------------------------------

_BSN_WEIGHTS: Final = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def passes_11_proef(bsn: str) -> bool:
    """True for 9 ASCII digits, not all zero, whose weighted sum is divisible by 11."""
    if len(bsn) != len(_BSN_WEIGHTS) or not (bsn.isascii() and bsn.isdigit()):
        return False
    digits = [int(ch) for ch in bsn]
    total = sum(w * d for w, d in zip(_BSN_WEIGHTS, digits, strict=True))
    return total % 11 == 0 and any(digits)


def example_bsn(seed: int) -> str:
    """A BSN that passes the 11-proef, distinct for every seed below 5 * 10**7: for
    demos, tests and benchmarks (real BSNs never appear in the repository).

    Seed s owns the 8-digit bases 2s and 2s + 1; their check sums differ by 2 (mod 11),
    so at least one of them has a check digit."""
    for base in (2 * seed, 2 * seed + 1):
        head = f"{base % 10**8:08d}"
        total = sum(w * int(d) for w, d in zip(_BSN_WEIGHTS, head, strict=False))
        check = total % 11
        if check < 10 and passes_11_proef(head + str(check)):
            return head + str(check)
    raise ValueError(f"no BSN for seed {seed}")


# --- body ---------------------------------------------------------------------------


class _BodyError(ValueError):
    """Raised from inside json.loads hooks with a message fit for the partner."""


def _no_constants(name: str) -> object:
    raise _BodyError("NaN and Infinity are not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        # Two parsers could read a duplicated key differently; refuse the ambiguity.
        raise _BodyError("body contains a duplicate key")
    return result


def _parse_object(body: bytes) -> dict[str, Any] | ErrorItem:
    def invalid(msg: str) -> ErrorItem:
        return _error("body", ErrorCode.INVALID_JSON, msg)

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return invalid("body is not valid UTF-8")
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
        # An escaped lone surrogate ("\ud800") parses but is not text; re-encoding
        # finds it before it can reach a database or a mail.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except _BodyError as exc:
        return invalid(str(exc))
    except RecursionError:
        return invalid("body is nested too deeply")
    except ValueError:  # JSONDecodeError, UnicodeEncodeError, too many digits
        return invalid("body is not valid JSON")
    if not isinstance(value, dict):
        return invalid("body must be a JSON object")
    return value


# --- pydantic errors → ErrorItem ----------------------------------------------------

_SAFE_FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _loc_text(details: ErrorDetails) -> str:
    parts = [str(part) for part in details["loc"]]
    if details["type"] == "extra_forbidden" and not _SAFE_FIELD_NAME.fullmatch(parts[-1]):
        # An unknown key is partner input and could be anything, even a BSN.
        parts[-1] = "<unknown>"
    return ".".join(parts) or "body"


def _msg_text(details: ErrorDetails, routing_key: str) -> str:
    kind = details["type"]
    ctx: dict[str, Any] = details.get("ctx") or {}
    if kind.startswith(OWN_ERROR_PREFIX):
        return details["msg"]  # fixed text from shared.contract.inbound
    if details["loc"] == ("type",):
        return f"must equal the routing key '{routing_key}'"
    match kind:
        case "missing":
            return "is required"
        case "extra_forbidden":
            return "is not a known field"
        case "string_type" | "string_unicode":
            return "must be a string"
        case "string_too_short" if ctx.get("min_length") == 1:
            return "must not be empty"
        case "string_too_short":
            return f"must be at least {ctx.get('min_length')} characters"
        case "string_too_long":
            return f"must be at most {ctx.get('max_length')} characters"
        case "literal_error":
            return f"must be {ctx.get('expected')}"
        case "list_type":
            return "must be a list"
        case "too_short":
            return f"must hold at least {ctx.get('min_length')} item(s)"
        case "too_long":
            return f"must hold at most {ctx.get('max_length')} item(s)"
        case "model_type" | "model_attributes_type" | "dict_type":
            return "must be an object"
        case _:
            return "is not valid"


def _schema_errors(exc: ValidationError, routing_key: str) -> list[ErrorItem]:
    return [
        _error(_loc_text(details), ErrorCode.SCHEMA, _msg_text(details, routing_key))
        for details in exc.errors(include_url=False, include_input=False)
    ]


# --- rules that can be judged without stored state ----------------------------------

T = TypeVar("T")

_BSN: Final[TypeAdapter[str]] = TypeAdapter(Bsn)
_DATE: Final[TypeAdapter[date]] = TypeAdapter(CalendarDate)
_TIMESTAMP: Final[TypeAdapter[datetime]] = TypeAdapter(Timestamp)
_MUNICIPALITY: Final[TypeAdapter[str]] = TypeAdapter(MunicipalityCode)
_REF: Final[TypeAdapter[str]] = TypeAdapter(MeldingRef)


def _field(body: Mapping[str, Any], path: str, adapter: TypeAdapter[T]) -> T | None:
    """The value at dotted ``path`` if it is valid on its own, else None.

    Lets a rule run even when another part of the message has a schema error.
    """
    current: Any = body
    for key in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(key)
    if current is None:
        return None
    try:
        return adapter.validate_python(current)
    except ValidationError:
        return None


def _bsn_rule(body: Mapping[str, Any], path: str) -> list[ErrorItem]:
    bsn = _field(body, path, _BSN)
    if bsn is not None and not passes_11_proef(bsn):
        return [_error(path, ErrorCode.BSN_CHECKSUM, "does not pass the 11-proef")]
    return []


def _municipality_rule(
    body: Mapping[str, Any], path: str, municipalities: Collection[str]
) -> list[ErrorItem]:
    code = _field(body, path, _MUNICIPALITY)
    if code is not None and code not in municipalities:
        msg = "is not a municipality of this region"
        return [_error(path, ErrorCode.UNKNOWN_MUNICIPALITY, msg)]
    return []


def _not_after_today(body: Mapping[str, Any], path: str, today: date) -> list[ErrorItem]:
    day = _field(body, path, _DATE)
    if day is not None and day > today:
        return [_error(path, ErrorCode.SCHEMA, "must not be in the future")]
    return []


def _register_rules(
    body: Mapping[str, Any], municipalities: Collection[str], now: datetime
) -> list[ErrorItem]:
    errors = _bsn_rule(body, "youth.bsn")
    birth = _field(body, "youth.birth_date", _DATE)
    reported_at = _field(body, "reported_at", _TIMESTAMP)
    if reported_at is not None:
        reported_on = amsterdam_date(reported_at)
        if birth is not None and birth > reported_on:
            errors.append(
                _error(
                    "youth.birth_date",
                    ErrorCode.BIRTH_DATE_FUTURE,
                    "lies after the date of reported_at",
                )
            )
        elif birth is not None and age_on(birth, reported_on) >= AGE_LIMIT:
            errors.append(
                _error(
                    "youth.birth_date",
                    ErrorCode.TOO_OLD,
                    f"the youth must be under {AGE_LIMIT} on the date of reported_at",
                )
            )
    errors += _municipality_rule(body, "youth.municipality", municipalities)
    if reported_at is not None and reported_at - now > MAX_CLOCK_AHEAD:
        errors.append(
            _error(
                "reported_at",
                ErrorCode.REPORTED_AT_FUTURE,
                "lies more than 5 minutes in the future",
            )
        )
    return errors


def _rule_errors(
    message_type: str, body: Mapping[str, Any], municipalities: Collection[str], now: datetime
) -> list[ErrorItem]:
    today = amsterdam_date(now)
    match message_type:
        case "melding.register":
            return _register_rules(body, municipalities, now)
        case "melding.informed":
            return _not_after_today(body, "informed_on", today)
        case "person.moved":
            return _bsn_rule(body, "bsn") + _municipality_rule(body, "municipality", municipalities)
        case "person.deceased":
            # A death in the future would purge data irreversibly; refuse it.
            return _bsn_rule(body, "bsn") + _not_after_today(body, "died_on", today)
        case "person.family":
            return _bsn_rule(body, "bsn") + _parent_rules(body)
        case _:
            return []


def _parent_rules(body: Mapping[str, Any]) -> list[ErrorItem]:
    parents = body.get("parents")
    if not isinstance(parents, list):
        return []
    errors: list[ErrorItem] = []
    for i, value in enumerate(parents):
        try:
            bsn = _BSN.validate_python(value)
        except ValidationError:
            continue  # a schema error at parents.<i> already says what is wrong
        if not passes_11_proef(bsn):
            errors.append(
                _error(f"parents.{i}", ErrorCode.BSN_CHECKSUM, "does not pass the 11-proef")
            )
    return errors


# --- the front door -----------------------------------------------------------------


def _readable_ref(body: Mapping[str, Any]) -> str | None:
    return _field(body, "melding_ref", _REF)


def _without_repeats(errors: list[ErrorItem]) -> list[ErrorItem]:
    return list(dict.fromkeys(errors))


def validate_inbound(
    routing_key: str,
    body: bytes,
    *,
    roles: frozenset[str],
    municipalities: Collection[str],
    now: datetime,
    max_bytes: int = MAX_BODY_BYTES,
) -> ValidationOutcome:
    """Check one inbound message from a known partner.

    ``roles`` are the sending partner's roles, ``municipalities`` the codes in the
    region config, ``now`` an aware datetime. The message_id is checked separately
    with :func:`check_message_id`.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if len(body) > max_bytes:
        return Invalid([_error("body", ErrorCode.TOO_LARGE, f"body exceeds {max_bytes} bytes")])

    gate: list[ErrorItem] = []
    model = INBOUND_TYPES.get(routing_key)
    if model is None:
        gate.append(_error("type", ErrorCode.UNKNOWN_TYPE, "is not a known message type"))
    elif REQUIRED_ROLE[routing_key] not in roles:
        gate.append(_error("type", ErrorCode.NOT_AUTHORIZED, "this partner may not send this type"))

    parsed = _parse_object(body)
    if isinstance(parsed, ErrorItem):
        return Invalid([*gate, parsed])
    ref = _readable_ref(parsed)
    if model is None or gate:
        return Invalid(gate, ref)

    errors: list[ErrorItem] = []
    message: InboundMessage | None = None
    try:
        # INBOUND_TYPES maps each type to the matching member of InboundMessage.
        message = cast(InboundMessage, model.model_validate(parsed))
    except ValidationError as exc:
        errors += _schema_errors(exc, routing_key)
    errors += _rule_errors(routing_key, parsed, municipalities, now)

    if errors or message is None:
        return Invalid(_without_repeats(errors), ref)
    return Valid(message)
