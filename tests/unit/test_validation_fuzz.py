"""Throw hostile bodies at the front door: it must never raise and never leak.

For every input, validate_inbound returns Valid or Invalid-with-errors, the errors
serialise into a receipt, and no error quotes the BSN, surname or birth date that
was put into the message.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contract.inbound import INBOUND_TYPES, MeldingRegister
from shared.contract.outbound import Receipt, dump_json
from shared.contract.validation import Invalid, Valid, validate_inbound

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=timezone(timedelta(hours=1)))
MUNICIPALITIES = frozenset({"0363", "0599"})
ROUTING_KEYS = [*sorted(INBOUND_TYPES), "melding.delete", "", "#", "melding.*", "x" * 300]
ROLE_SETS = [
    frozenset({"reporter"}),
    frozenset({"population_register"}),
    frozenset({"reporter", "population_register"}),
    frozenset(),
]
FUZZ = settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

HOSTILE_STRINGS = [
    "'; DROP TABLE melding; --",
    '" OR 1=1 --',
    "$(rm -rf /)",
    "`id`",
    "a; cat /etc/passwd",
    "a\r\nBcc: evil@attacker.example",
    "x@y.example\nSubject: hi",
    "\x00",
    "\ud800",
    "\udfff\ud800",
    "\u202egnp.exe",
    "%s%s%n",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\ufeff",
    "",
    " ",
    "x" * 300,
    "x" * 70_000,
    "٣٦٣٠",
    "0363\n",
    "2026-02-30",
    "2026-11-28T10:00:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
]

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(HOSTILE_STRINGS),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=100, max_size=400),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


@dataclass
class Secrets:
    """Personal data placed in a message; none of it may appear in an error."""

    bsn: str | None = None
    surname: str | None = None
    birth_date: str | None = None
    all: list[str] = field(default_factory=list)


def assert_well_behaved(outcome: object, routing_key: str, secrets: Secrets) -> None:
    assert isinstance(outcome, Valid | Invalid)
    if isinstance(outcome, Valid):
        assert outcome.message.type == routing_key
        if isinstance(outcome.message, MeldingRegister) and outcome.message.youth.bsn:
            assert outcome.message.youth.surname is None
            assert outcome.message.youth.sex is None
        return
    assert outcome.errors
    receipt = Receipt(
        in_reply_to="m-1", status="rejected", melding_ref=outcome.melding_ref, errors=outcome.errors
    )
    dump_json(receipt).decode("utf-8")
    for error in outcome.errors:
        for secret in secrets.all:
            assert secret not in error.msg, (secret, error)
        for identifying in (secrets.bsn, secrets.birth_date):
            if identifying:
                assert identifying not in error.loc, (identifying, error)


def run(routing_key: str, body: bytes, roles: frozenset[str], secrets: Secrets) -> None:
    outcome = validate_inbound(
        routing_key, body, roles=roles, municipalities=MUNICIPALITIES, now=NOW
    )
    assert_well_behaved(outcome, routing_key, secrets)


# --- plausible messages to mutate ------------------------------------------------------

bsns = st.from_regex(r"[0-9]{9}", fullmatch=True)
# "Zz" makes a surname impossible to confuse with words in our own messages.
surnames = st.from_regex(r"Zz[a-z]{3,10}( [A-Z][a-z]{2,10})?", fullmatch=True)
birth_dates = st.one_of(
    st.dates(min_value=datetime(1995, 1, 1).date(), max_value=datetime(2027, 12, 31).date()).map(
        lambda d: d.isoformat()
    ),
    # Around the 23rd birthday and the date of the melding, and a leap day.
    st.sampled_from(["2003-11-28", "2003-11-29", "2026-11-28", "2026-11-29", "2004-02-29"]),
)


@st.composite
def plausible_message(draw: st.DrawFn) -> tuple[str, dict[str, Any], Secrets]:
    message_type = draw(st.sampled_from(sorted(INBOUND_TYPES)))
    bsn, surname, birth = draw(bsns), draw(surnames), draw(birth_dates)
    secrets = Secrets(bsn=bsn, surname=surname, birth_date=birth, all=[bsn, surname, birth])
    ref = draw(st.sampled_from(["R-1", "R-2026-0001", "ref with spaces"]))
    body: dict[str, Any] = {"type": message_type}
    if message_type == "melding.register":
        identity = draw(
            st.sampled_from(
                [{"bsn": bsn}, {"surname": surname, "sex": "F"}, {"bsn": bsn, "surname": surname}]
            )
        )
        body |= {
            "melding_ref": ref,
            "youth": {**identity, "birth_date": birth, "municipality": "0363"},
            "reporter": {"name": "A. Reporter", "email": "a@school.example", "phone": None},
            "reported_at": draw(st.sampled_from(["2026-11-28T09:00:00Z", NOW.isoformat()])),
        }
    elif message_type == "melding.withdraw":
        body |= {"melding_ref": ref, "reason": "risk_ended"}
    elif message_type == "regie.claim":
        body |= {"melding_ref": ref}
    elif message_type == "melding.informed":
        body |= draw(
            st.sampled_from(
                [
                    {"melding_ref": ref, "informed": ["parents"], "informed_on": "2026-11-27"},
                    {"melding_ref": ref, "deferred_reason": "later"},
                ]
            )
        )
    elif message_type == "person.moved":
        body |= {"bsn": bsn, "municipality": "0599", "moved_at": "2026-11-01T00:00:00Z"}
    else:
        body |= {"bsn": bsn, "died_on": birth}
    return message_type, body, secrets


def _slots(body: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Every (dict, key) pair in the message, nested dicts included."""
    slots: list[tuple[dict[str, Any], str]] = []
    pending = [body]
    while pending:
        current = pending.pop()
        for key, value in current.items():
            slots.append((current, key))
            if isinstance(value, dict):
                pending.append(value)
    return slots


@st.composite
def mutated_message(draw: st.DrawFn) -> tuple[str, bytes, Secrets]:
    message_type, body, secrets = draw(plausible_message())
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        slots = _slots(body)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["delete", "replace", "add", "wrap", "rename"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(json_values)
        elif action == "add":
            container[draw(hostile_text)] = draw(json_values)
        elif action == "wrap":
            container[key] = draw(st.sampled_from([[container[key]], {"value": container[key]}]))
        else:
            container[draw(st.sampled_from([key.upper(), key + " ", secrets.bsn or "x"]))] = (
                container.pop(key)
            )
    routing_key = draw(st.one_of(st.just(message_type), st.sampled_from(ROUTING_KEYS)))
    raw = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return routing_key, raw, secrets


# --- the tests --------------------------------------------------------------------------


@FUZZ
@given(
    routing_key=st.sampled_from(ROUTING_KEYS),
    body=st.binary(max_size=600),
    roles=st.sampled_from(ROLE_SETS),
)
def test_random_bytes(routing_key: str, body: bytes, roles: frozenset[str]) -> None:
    run(routing_key, body, roles, Secrets())


@FUZZ
@given(
    routing_key=st.sampled_from(ROUTING_KEYS),
    value=json_values,
    roles=st.sampled_from(ROLE_SETS),
)
def test_random_json(routing_key: str, value: Any, roles: frozenset[str]) -> None:
    body = json.dumps(value).encode("utf-8")
    run(routing_key, body, roles, Secrets())


@settings(FUZZ, max_examples=2000)
@given(case=mutated_message(), roles=st.sampled_from(ROLE_SETS))
def test_mutated_messages(case: tuple[str, bytes, Secrets], roles: frozenset[str]) -> None:
    routing_key, body, secrets = case
    run(routing_key, body, roles, secrets)


@settings(FUZZ, max_examples=300)
@given(
    depth=st.integers(min_value=1, max_value=40_000),
    opener=st.sampled_from(["[", '{"a":', '{"youth":']),
    closed=st.booleans(),
    where=st.sampled_from(["top", "melding_ref", "youth"]),
)
def test_deep_nesting(depth: int, opener: str, closed: bool, where: str) -> None:
    closer = {"[": "]"}.get(opener, "}")
    nested = opener * depth + "1" + (closer * depth if closed else "")
    if where == "top":
        text = nested
    else:
        text = '{"type": "melding.register", "' + where + '": ' + nested + "}"
    body = text.encode()
    run("melding.register", body, frozenset({"reporter"}), Secrets())


@settings(FUZZ, max_examples=600)
@given(
    case=plausible_message(),
    position=st.floats(min_value=0, max_value=1),
    junk=st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"\xf4\x90"]),
    truncate=st.booleans(),
)
def test_broken_utf8_in_messages(
    case: tuple[str, dict[str, Any], Secrets], position: float, junk: bytes, truncate: bool
) -> None:
    message_type, body, secrets = case
    raw = json.dumps(body, ensure_ascii=False).encode()
    cut = int(len(raw) * position)
    raw = raw[:cut] + junk + (b"" if truncate else raw[cut:])
    run(message_type, raw, frozenset({"reporter", "population_register"}), secrets)
