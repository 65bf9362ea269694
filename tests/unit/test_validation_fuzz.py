"""Throw hostile bodies at the front door: it must never raise and never leak.

For every input, validate_inbound returns Valid or Invalid-with-errors, the errors
serialise into a receipt, and no error quotes the BSN, surname or birth date that
was put into the message. The messages come from testing/hostile_messages.py.
"""

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contract.inbound import MeldingRegister
from shared.contract.outbound import Receipt, dump_json
from shared.contract.validation import Invalid, Valid, validate_inbound
from testing.hostile_messages import (
    NOW,
    ROUTING_KEYS,
    Secrets,
    json_values,
    mutated_message,
    plausible_message,
)

MUNICIPALITIES = frozenset({"0363", "0599"})
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
