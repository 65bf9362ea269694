"""Hostile and mutated partner messages (hypothesis strategies): the fuzz tests of the
front door (tests/unit/test_validation_fuzz.py) and the chaos run's hostile partner
(chaos/hostile.py) draw from them.

Each plausible message comes with the personal data put into it (`Secrets`), which no
error may quote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from shared.contract.inbound import INBOUND_TYPES

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=timezone(timedelta(hours=1)))
ROUTING_KEYS = [*sorted(INBOUND_TYPES), "melding.delete", "", "#", "melding.*", "x" * 300]

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
