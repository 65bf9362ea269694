"""The published JSON Schemas accept exactly the messages whose shape the index accepts.

The schemas are validated as a partner would: with ``jsonschema`` and its format
checker. The index's verdict is that of the front door (``validate_inbound``) on
everything a static schema can say: structure, types, lengths, patterns and formats.
What only the index can judge is left out of the comparison: the codes of the rules
that need the clock, the region or arithmetic (11-proef, age, birth date after
``reported_at``, ``reported_at`` ahead of the clock, an unknown municipality), with
the clock set after every date the contract allows, so that the "not in the future"
rules of ``informed_on`` and ``died_on`` cannot fire either.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import unicodedata
from datetime import UTC, date, datetime
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from shared.contract import patterns
from shared.contract.errors import ErrorCode
from shared.contract.inbound import INBOUND_TYPES, MAX_YEAR, MIN_YEAR
from shared.contract.schema_export import INDEX_ONLY_CHECKS, schema_for
from shared.contract.validation import Invalid, validate_inbound

# The schemas exactly as exported (through JSON, as a partner reads them).
SCHEMAS: Final = {
    message_type: json.loads(json.dumps(schema_for(model, "inbound")))
    for message_type, model in INBOUND_TYPES.items()
}
VALIDATORS: Final = {
    message_type: Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for message_type, schema in SCHEMAS.items()
}
INDEX_ONLY: Final = {
    ErrorCode.BSN_CHECKSUM,
    ErrorCode.TOO_OLD,
    ErrorCode.BIRTH_DATE_FUTURE,
    ErrorCode.REPORTED_AT_FUTURE,
    ErrorCode.UNKNOWN_MUNICIPALITY,
}
ALL_ROLES: Final = frozenset({"reporter", "population_register", "coordinator"})
ALL_MUNICIPALITIES: Final = frozenset(f"{n:04d}" for n in range(10_000))
AFTER_EVERY_DATE: Final = datetime(MAX_YEAR, 12, 31, 23, 59, tzinfo=UTC)


def index_accepts(message_type: str, body: dict[str, Any]) -> bool:
    outcome = validate_inbound(
        message_type,
        json.dumps(body).encode(),
        roles=ALL_ROLES,
        municipalities=ALL_MUNICIPALITIES,
        now=AFTER_EVERY_DATE,
    )
    return not isinstance(outcome, Invalid) or all(e.code in INDEX_ONLY for e in outcome.errors)


def assert_agree(message_type: str, body: dict[str, Any]) -> None:
    schema = VALIDATORS[message_type].is_valid(body)
    index = index_accepts(message_type, body)
    assert schema == index, (
        f"schema {'accepts' if schema else 'rejects'}, index {'accepts' if index else 'rejects'}:"
        f" {json.dumps(body, ensure_ascii=True)}"
    )


# --- valid messages to start from ---------------------------------------------------

BASES: Final[dict[str, dict[str, Any]]] = {
    "melding.register": {
        "type": "melding.register",
        "melding_ref": "R-2026-0001",
        "youth": {"bsn": "111222333", "birth_date": "2014-05-01", "municipality": "0363"},
        "reporter": {
            "name": "J. de Vries",
            "email": "j.devries@school.example",
            "phone": "+31201234567",
        },
        "reported_at": "2026-11-28T10:00:00+01:00",
    },
    "melding.withdraw": {
        "type": "melding.withdraw",
        "melding_ref": "R-2026-0001",
        "reason": "risk_ended",
    },
    "regie.claim": {"type": "regie.claim", "melding_ref": "R-2026-0001"},
    "regie.assign": {
        "type": "regie.assign",
        "match_id": "5b0f1c9e-7a43-4d2e-9a51-0c1f3e8d2b77",
        "partner": "jt-noord",
    },
    "melding.informed": {
        "type": "melding.informed",
        "melding_ref": "R-2026-0001",
        "informed": ["parents"],
        "informed_on": "2026-11-30",
    },
    "person.moved": {
        "type": "person.moved",
        "bsn": "111222333",
        "municipality": "0599",
        "moved_at": "2026-11-28T10:00:00+01:00",
    },
    "person.deceased": {"type": "person.deceased", "bsn": "111222333", "died_on": "2026-11-01"},
    "person.family": {
        "type": "person.family",
        "lookup_id": "5b0f1c9e-7a43-4d2e-9a51-0c1f3e8d2b77",
        "bsn": "111222333",
        "parents": ["123456782"],
        "address": {"id": "0363200000123456", "institutional": False},
    },
}


def with_change(base: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of ``base`` with the field at dotted ``path`` set (or removed, for
    the MISSING marker)."""
    body: dict[str, Any] = json.loads(json.dumps(base))
    *parents, key = path.split(".")
    target: Any = body
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return body  # the parent itself was changed into something else
    if value is MISSING:
        target.pop(key, None)
    else:
        target[key] = value
    return body


MISSING: Final = object()


# --- the four cases that were found by hand, and their neighbours -------------------


@pytest.mark.parametrize(
    ("message_type", "path", "value", "accepted"),
    [
        ("melding.register", "youth.bsn", None, False),  # no identity at all
        ("melding.register", "reporter.name", "J. de\nVries", False),
        ("melding.register", "reported_at", "2026-11-28T10:00:00", False),  # no offset
        ("melding.register", "reported_at", "2026-11-28T10:00+01:00", True),  # no seconds
        ("melding.register", "reported_at", "2026-11-28T10:00:00.123456789Z", True),
        ("melding.register", "reported_at", "2026-11-28t10:00z", True),
        ("melding.register", "reported_at", "2026-11-28 10:00:00+01:00", False),
        ("melding.register", "reported_at", "2026-11-28T10:00:00+24:00", False),
        ("melding.register", "reported_at", "2026-11-28T24:00:00Z", False),
        ("melding.register", "reported_at", "2026-11-28T10:00:60Z", False),
        ("melding.register", "reported_at", "2025-02-29T10:00:00Z", False),
        ("melding.register", "reported_at", "2024-02-29T10:00:00Z", True),
        ("melding.register", "reported_at", "1899-12-31T23:59:59+01:00", False),
        ("melding.register", "reporter.name", "  J. de Vries\n", True),  # trimmed
        ("melding.register", "reporter.name", " \t ", False),
        ("melding.register", "reporter.name", "x" * 200 + "  ", True),
        ("melding.register", "reporter.name", "x" * 201, False),
        ("melding.register", "reporter.name", "Chloë\u202eseirV", False),  # bidi override
        ("melding.register", "reporter.name", "Zoë 🙂", True),
        ("melding.register", "reporter.phone", "   ", True),  # blank: no phone
        ("melding.register", "reporter.phone", None, True),
        ("melding.register", "reporter.phone", MISSING, True),
        ("melding.register", "reporter.email", "a@b.cd\n", False),
        ("melding.register", "youth.bsn", "111222333\n", False),
        ("melding.register", "youth.municipality", "0363\n", False),
        ("melding.register", "youth.municipality", "٠٣٦٣", False),  # Arabic-Indic digits
        ("melding.register", "youth.birth_date", "2014-5-1", False),
        ("melding.register", "melding_ref", "R 1", True),
        ("melding.register", "melding_ref", "R\u00a01", False),
        ("melding.register", "melding_ref", "x" * 65, False),
        ("melding.informed", "deferred_reason", None, True),
        ("melding.informed", "deferred_reason", "later", False),  # both forms
        ("melding.informed", "informed", ["youth", "youth"], False),
        ("person.deceased", "died_on", "2999-12-31", True),
        ("person.deceased", "died_on", "3000-01-01", False),
    ],
)
def test_schema_and_index_agree_on(
    message_type: str, path: str, value: object, accepted: bool
) -> None:
    body = with_change(BASES[message_type], path, value)
    assert VALIDATORS[message_type].is_valid(body) is accepted
    assert_agree(message_type, body)


@pytest.mark.parametrize(
    ("youth", "accepted"),
    [
        ({"bsn": None, "surname": "Jansen", "sex": "X"}, True),
        ({"bsn": "111222333", "surname": 5, "sex": "?"}, True),  # ignored, not stored
        ({"bsn": 111222333}, False),
        ({"surname": "Jansen", "sex": None}, False),
        ({"surname": " ", "sex": "F"}, False),
        ({}, False),
    ],
)
def test_the_identity_of_a_youth(youth: dict[str, Any], accepted: bool) -> None:
    base = BASES["melding.register"]
    body = {**base, "youth": {"birth_date": "2014-05-01", "municipality": "0363", **youth}}
    assert VALIDATORS["melding.register"].is_valid(body) is accepted
    assert_agree("melding.register", body)


def test_the_informed_forms() -> None:
    base = {"type": "melding.informed", "melding_ref": "R-1"}
    forms: list[tuple[dict[str, Any], bool]] = [
        ({"deferred_reason": "a note\nover two lines"}, True),
        ({"deferred_reason": "x", "informed": None, "informed_on": None}, True),
        ({"informed": ["youth"], "informed_on": "2026-01-01", "deferred_reason": None}, True),
        ({"informed": ["youth"]}, False),
        ({"informed_on": "2026-01-01", "deferred_reason": "x"}, False),
        ({}, False),
    ]
    for extra, accepted in forms:
        body = {**base, **extra}
        assert VALIDATORS["melding.informed"].is_valid(body) is accepted, extra
        assert_agree("melding.informed", body)


# --- values at the edges of each field ---------------------------------------------
#
# For every field a catalogue of values, each a good value with one thing wrong or
# right at a limit: every one of them is tried in every form of its message, and the
# generated messages below combine them with good values of the other fields.

# Characters where the rules have their edges.
EDGE_CHARS: Final = [
    *" \t\n\r\x0b\x00\x1b\x1f\x7f\x85\xa0\xad\u1680\u180e\u200b\u2028\u2029\u202e\u3000\ufeff",
    "\U0001f642",  # an emoji: outside the BMP, allowed
    "\U000e0041",  # a tag character: outside the BMP, allowed
    *'é\u0301@.<"\\09٣aZ',
]
# Whitespace around a value: trimmed by the index from names, phones and notes.
PADDING: Final = [("", ""), (" ", "\n"), ("\u2028", "\xa0"), ("\t", ""), ("", "\u3000 ")]


def spell(fill: str, n: int, last: str) -> str:
    """``n`` characters: ``fill`` repeated, ending in ``last``."""
    return (fill * n)[: n - 1] + last if n else ""


def text_edges(limit: int) -> list[str]:
    """Trimmed lengths at the limits with whitespace around; each edge character alone,
    inside a word and at its ends."""
    at_limits = [
        before + spell(fill, n, last) + after
        for n in (0, 1, 2, limit - 1, limit, limit + 1)
        for fill in ("a", "🙂", "a b")
        for last in ("b", "🙂")
        for before, after in PADDING
    ]
    odd = [form.format(ch) for ch in EDGE_CHARS for form in ("{}", "a{}b", "{}ab", "ab{}")]
    return at_limits + odd


def digit_edges(n: int) -> list[str]:
    return [
        form.format(spell("7", length, "1"), odd)
        for length in (0, n - 1, n, n + 1)
        for odd in ("", "\n", " ", "٣", "a", "-")
        for form in ("{}{}", "{1}{0}")
    ]


def odd_date(day: date, kind: int) -> str:
    y, m, d = day.year, day.month, day.day
    return [
        day.isoformat(),
        f"{y:04d}-02-29",
        f"{y:04d}-{m:02d}-31",
        f"{y:04d}-{m:02d}-30",
        f"{y:04d}-{m:02d}-00",
        f"{y:04d}-13-{d:02d}",
        f"{y}-{m}-{d}",
        f"{day.isoformat()}\n",
        f"{day.isoformat()}T00:00:00",
        f"{y:04d}{m:02d}{d:02d}",
        f"{y - 1:04d}-{m:02d}-{d:02d}",
        f"{y + 1:04d}-{m:02d}-{d:02d}",
    ][kind]


EDGE_DAYS: Final = [
    date(MIN_YEAR, 1, 1),
    date(MIN_YEAR, 2, 28),
    date(1904, 2, 29),
    date(2000, 2, 29),
    date(2025, 4, 30),
    date(2100, 2, 28),
    date(2400, 2, 29),
    date(MAX_YEAR, 12, 31),
]
DATE_EDGES: Final = sorted({odd_date(day, kind) for day in EDGE_DAYS for kind in range(12)})

# A timestamp: (good values, odd values) per part.
TIMESTAMP_PARTS: Final = {
    "separator": (["T", "t"], [" ", "", "TT"]),
    "time": (
        ["10:00", "23:59:59", "00:00:00.5", "12:30:00.123456789", "07:05:09.1"],
        ["24:00", "10:60", "10:00:60", "10:00:00.", "10:00:00.1234567890", "1:00", "10"],
    ),
    "offset": (
        ["Z", "z", "+01:00", "-23:59", "+00:00", "-00:00"],
        ["", "+24:00", "+01:60", "+0100", "+01", "+1:00", "Z+01:00"],
    ),
    "suffix": ([""], ["\n", " ", "x"]),
}


def timestamp(day: str, parts: dict[str, str]) -> str:
    return f"{day}{parts['separator']}{parts['time']}{parts['offset']}{parts['suffix']}"


def timestamp_edges() -> list[str]:
    """Every odd part in a timestamp otherwise good, every good part, every date edge."""
    first = {name: good[0] for name, (good, _) in TIMESTAMP_PARTS.items()}
    found = [timestamp(day, first) for day in DATE_EDGES]
    for name, (good, odd) in TIMESTAMP_PARTS.items():
        for value in good + odd:
            found += [timestamp(day.isoformat(), {**first, name: value}) for day in EDGE_DAYS]
    return found


EMAIL_EDGES: Final = [
    form.format(local=local, domain=domain)
    for local in ("j.devries", "a" * 64, "a" * 65, "a b", "é", "a\n", "🙂", "a\x85")
    for domain in ("school.example", "a.nl", "a.n", "a..nl", "nl", "a.nl.", "a\u200b.nl", "ä.nl")
    for form in ("{local}@{domain}", "{local}@{domain}\n", "{local}{domain}", "{local}@@{domain}")
] + ["j@" + "a" * 250 + ".nl", "j@" + "a" * 248 + ".nl"]
OTHER_VALUES: Final[list[Any]] = [None, True, 0, 9, "", [], {}, ["x"], MISSING]
PLAIN_EDGES: Final = text_edges(200)

EDGES: Final[dict[str, list[Any]]] = {
    "type": [*INBOUND_TYPES, "Melding.register", "melding.register "],
    "melding_ref": text_edges(64),
    "youth": [],
    "reporter": [],
    "youth.bsn": digit_edges(9),
    "youth.surname": PLAIN_EDGES,
    "youth.sex": ["M", "F", "X", "m", "MF", " M"],
    "youth.birth_date": DATE_EDGES,
    "youth.municipality": digit_edges(4),
    "reporter.name": PLAIN_EDGES,
    "reporter.email": EMAIL_EDGES,
    "reporter.phone": text_edges(32),
    "reported_at": timestamp_edges(),
    "reason": ["risk_ended", "unjustified", "other", "Risk_ended"],
    "informed": [[t] for t in ("youth", "parents", "Youth", "")]
    + [["youth", "parents"], ["parents", "parents"], ["youth", "parents", "youth"]],
    "informed_on": DATE_EDGES,
    "deferred_reason": text_edges(500),
    "bsn": digit_edges(9),
    "municipality": digit_edges(4),
    "moved_at": timestamp_edges(),
    "died_on": DATE_EDGES,
    "lookup_id": text_edges(64),
    "match_id": text_edges(64),
    "partner": text_edges(64),
    "parents": [
        [],
        ["123456782", "111222333", "123456782", "111222333"],
        ["123456782"] * 5,
        ["12345678"],
        [123456782],
        "123456782",
        [None],
    ],
    "address.id": digit_edges(16),
    "address.institutional": [True, False, "true", 0, 1, None],
}


def paths_of(message_type: str) -> list[str]:
    found = leaf_paths(BASES[message_type], with_type=True)
    if message_type == "melding.register":
        found += ["youth", "reporter", "youth.surname", "youth.sex"]
    if message_type == "melding.informed":
        found += ["deferred_reason"]
    return found


def leaf_paths(body: dict[str, Any], prefix: str = "", *, with_type: bool = False) -> list[str]:
    found = []
    for key, value in body.items():
        if isinstance(value, dict):
            found += leaf_paths(value, f"{prefix}{key}.")
        elif key != "type" or with_type:
            found.append(prefix + key)
    return found


# Each message in each of its forms (a youth without a BSN; a deferral).
FORMS: Final[dict[str, list[dict[str, Any]]]] = {
    message_type: [base] for message_type, base in BASES.items()
}
FORMS["melding.register"].append(
    {
        **BASES["melding.register"],
        "youth": {
            "surname": "van den Berg",
            "sex": "F",
            "birth_date": "2015-03-02",
            "municipality": "0599",
        },
    }
)
FORMS["melding.informed"].append(
    {"type": "melding.informed", "melding_ref": "R-1", "deferred_reason": "later"}
)
FIELD_CASES: Final = [(t, p) for t in sorted(INBOUND_TYPES) for p in paths_of(t)]


@pytest.mark.parametrize(("message_type", "path"), FIELD_CASES)
def test_schema_and_index_agree_on_every_edge_of(message_type: str, path: str) -> None:
    disagreements = []
    for base in FORMS[message_type]:
        for value in [*EDGES[path], *OTHER_VALUES]:
            body = with_change(base, path, value)
            if VALIDATORS[message_type].is_valid(body) != index_accepts(message_type, body):
                disagreements.append(json.dumps(body, ensure_ascii=True))
    assert disagreements == []


# --- generated messages ---------------------------------------------------------------

plain = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cf", "Zl", "Zp", "Zs"]),
    min_size=1,
    max_size=8,
)
good_dates = st.dates(date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)).map(date.isoformat)
GOOD: Final[dict[str, st.SearchStrategy[Any]]] = {
    "melding_ref": plain,
    "youth.bsn": st.integers(0, 10**9 - 1).map(lambda n: f"{n:09d}"),
    "youth.surname": plain,
    "youth.sex": st.sampled_from(["M", "F", "X"]),
    "youth.birth_date": good_dates,
    "youth.municipality": st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    "reporter.name": plain,
    "reporter.email": st.builds(lambda a, b: f"{a}@{b}.nl", plain, plain),
    "reporter.phone": st.one_of(plain, st.none()),
    "reported_at": st.builds(
        lambda day, parts: timestamp(day, parts),
        good_dates,
        st.fixed_dictionaries({k: st.sampled_from(v[0]) for k, v in TIMESTAMP_PARTS.items()}),
    ),
    "reason": st.sampled_from(["risk_ended", "unjustified"]),
    "informed": st.sampled_from([["youth"], ["parents", "youth"]]),
    "informed_on": good_dates,
    "deferred_reason": plain,
}
GOOD.update(
    bsn=GOOD["youth.bsn"],
    municipality=GOOD["youth.municipality"],
    moved_at=GOOD["reported_at"],
    died_on=good_dates,
    lookup_id=plain,
    match_id=plain,
    partner=plain,
    parents=st.lists(GOOD["youth.bsn"], max_size=4),
)
GOOD["address.id"] = st.integers(0, 10**16 - 1).map(lambda n: f"{n:016d}")
GOOD["address.institutional"] = st.booleans()


def changed(base: dict[str, Any], *groups: list[tuple[str, Any]], extra: str | None) -> Any:
    body = base
    for path, value in [change for group in groups for change in group]:
        body = with_change(body, path, value)
    return body if extra is None else {**body, extra: "x"}


def messages(message_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """A form of the message with good random values, then one to three fields changed
    to one of their edge values (or null, another JSON type, left out); now and then
    an unknown field added."""
    fields = leaf_paths(BASES[message_type])
    change = st.one_of(
        [
            st.tuples(st.just(path), st.sampled_from([*EDGES[path], *OTHER_VALUES]))
            for path in paths_of(message_type)
            if EDGES[path]
        ]
    )
    return st.builds(
        changed,
        st.sampled_from(FORMS[message_type]),
        st.tuples(*(st.tuples(st.just(p), GOOD[p]) for p in fields)),
        st.lists(change, min_size=1, max_size=3),
        extra=st.sampled_from([None] * 10 + ["colour", "Type", "bsn", "youth"]),
    )


MESSAGES: Final = {message_type: messages(message_type) for message_type in INBOUND_TYPES}


@pytest.mark.parametrize("message_type", sorted(INBOUND_TYPES))
@given(data=st.data())
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
def test_schema_and_index_agree_on_generated_messages(
    message_type: str, data: st.DataObject
) -> None:
    assert_agree(message_type, data.draw(MESSAGES[message_type]))


# --- the patterns themselves -----------------------------------------------------------


def test_the_date_pattern_is_the_calendar() -> None:
    """Every day around every month's end, 1899 to 3000, against Python's calendar."""
    pattern = re.compile(patterns.DATE)
    for year in range(MIN_YEAR - 1, MAX_YEAR + 2):
        for month in range(1, 13):
            for day in (0, 1, 28, 29, 30, 31, 32):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    exists = MIN_YEAR <= date.fromisoformat(text).year <= MAX_YEAR
                except ValueError:
                    exists = False
                assert bool(pattern.search(text)) is exists, text


def test_forbidden_characters_cover_this_python_s_unicode() -> None:
    """The fixed list holds every BMP control, format and separator character known to
    the Unicode version of this Python: a newer one that adds some fails here."""
    forbidden = {c for lo, hi in patterns.FORBIDDEN for c in range(lo, hi + 1)}
    for code in range(0x10000):
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}:
            assert code in forbidden, f"U+{code:04X}"
    # Python's isspace also counts the four information separators (\x1c-\x1f).
    python_space = {chr(c) for c in range(0x10000) if chr(c).isspace()} - set("\x1c\x1d\x1e\x1f")
    assert set(patterns.WHITESPACE_CHARS) == python_space


def test_each_schema_says_what_only_the_index_checks() -> None:
    assert INDEX_ONLY_CHECKS.keys() == INBOUND_TYPES.keys()
    for message_type, schema in SCHEMAS.items():
        assert schema["description"].endswith("; ".join(INDEX_ONLY_CHECKS[message_type]) + ".")
    register = " ".join(INDEX_ONLY_CHECKS["melding.register"])
    assert all(f"({code.value})" in register for code in INDEX_ONLY)


def test_every_format_in_the_schemas_is_checked() -> None:
    """A format the checker does not know would pass anything, unseen."""
    known = set(Draft202012Validator.FORMAT_CHECKER.checkers)
    used = set(re.findall(r'"format": "([^"]+)"', json.dumps(SCHEMAS)))
    assert used and used <= known


def test_patterns_are_the_same_in_python_and_ecma_script() -> None:
    """Written within what both engines read the same way (see patterns.py)."""
    for schema in SCHEMAS.values():
        for pattern in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(schema)):
            source = json.loads(f'"{pattern}"')
            rest = source.replace(patterns.END, "")
            assert not any(x in rest for x in ("$", "\\d", "\\w", "\\s", "\\S")), source
            assert all(ord(ch) < 0x80 for ch in source)  # others only as \uXXXX


_ECMA_SEARCH: Final = """
const {patterns, texts} = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(patterns.map(p => texts.map(t => new RegExp(p, "u").test(t)))));
"""


NODE: Final = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="needs node for ECMA-262 regexes")
def test_an_ecma_script_engine_reads_every_pattern_as_python_does() -> None:
    """What a partner's validator in another language does with the same patterns."""
    assert NODE is not None
    found = re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', json.dumps(SCHEMAS))
    pattern_list = sorted({json.loads(p) for p in found})
    texts = sorted({v for values in EDGES.values() for v in values if isinstance(v, str)})
    result = subprocess.run(  # noqa: S603 (our own script and data)
        [NODE, "-e", _ECMA_SEARCH],
        input=json.dumps({"patterns": pattern_list, "texts": texts}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    ecma = json.loads(result.stdout)
    for pattern, verdicts in zip(pattern_list, ecma, strict=True):
        python = [re.search(pattern, t) is not None for t in texts]
        differ = [t for t, a, b in zip(texts, python, verdicts, strict=True) if a != b]
        assert differ == [], pattern
