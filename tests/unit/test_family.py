"""The family match (contract §8) without I/O: the rules, the front door's checks of
person.family, the region settings, the sealed BSN of a pending lookup, and what a
family.notice and its e-mails say."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from services.notifier.templates import compose
from shared.announce import family_event, lookup_messages
from shared.contract.inbound import PersonFamily
from shared.contract.outbound import load_outbound
from shared.contract.validation import Valid
from shared.index.family import FamilyFacts, Relative, family_pairs, shared_relation
from shared.index.participants import participant
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfigError, parse_region
from tests.support import region_document
from tests.unit.test_match_domain import melding
from tests.unit.test_validation import REGISTER, REPORTER, check, codes

P, Q, HOME, SHELTER = b"parent-p", b"parent-q", b"home", b"shelter"
BOTH = ("parent", "address")


def facts(
    *parents: bytes, address: bytes | None = None, institutional: bool = False
) -> FamilyFacts:
    return FamilyFacts(frozenset(parents), address, institutional)


# --- the rules ------------------------------------------------------------------------


def test_a_shared_parent_is_a_family_by_default() -> None:
    assert shared_relation(facts(P), facts(Q, P), enabled=["parent"], excluded_addresses=()) == (
        "parent"
    )
    assert shared_relation(facts(P), facts(Q), enabled=["parent"], excluded_addresses=()) is None


def test_a_shared_address_counts_only_when_the_region_turns_it_on() -> None:
    ours, theirs = facts(address=HOME), facts(address=HOME)
    assert shared_relation(ours, theirs, enabled=["parent"], excluded_addresses=()) is None
    assert shared_relation(ours, theirs, enabled=BOTH, excluded_addresses=()) == "address"


def test_institutional_and_excluded_addresses_never_match() -> None:
    home = facts(address=HOME)
    care_home = facts(address=HOME, institutional=True)
    assert shared_relation(home, care_home, enabled=BOTH, excluded_addresses=()) is None
    assert shared_relation(care_home, home, enabled=BOTH, excluded_addresses=()) is None
    assert shared_relation(home, home, enabled=BOTH, excluded_addresses={HOME}) is None


def test_family_matching_turned_off_matches_nothing() -> None:
    same = facts(P, address=HOME)
    assert shared_relation(same, same, enabled=[], excluded_addresses=()) is None


def test_a_parent_wins_over_an_address() -> None:
    same = facts(P, address=HOME)
    assert shared_relation(same, same, enabled=BOTH, excluded_addresses=()) == "parent"


def test_pairs_skip_the_same_partner_and_archived_meldingen_lower_id_first() -> None:
    own = [melding(5, "school"), melding(6, "jgz", active=False)]
    relative = Relative(
        2,
        facts(P),
        [melding(3, "school"), melding(4, "jeugdteam"), melding(7, "huisarts", active=False)],
    )
    pairs = family_pairs(own, facts(P), [relative], enabled=["parent"], excluded_addresses=())
    assert [(p.low.id, p.high.id, p.relation) for p in pairs] == [(4, 5, "parent")]


def test_no_relation_no_pairs() -> None:
    relative = Relative(2, facts(Q), [melding(4, "jeugdteam")])
    pairs = family_pairs(
        [melding(5, "school")], facts(P), [relative], enabled=BOTH, excluded_addresses=()
    )
    assert pairs == []


# --- the front door -------------------------------------------------------------------

GOOD_PARENT = "123456782"


def family(**changes: Any) -> dict[str, Any]:
    return {
        "type": "person.family",
        "lookup_id": "L-1",
        "bsn": "111222333",
        "parents": [GOOD_PARENT],
        "address": {"id": "0363200000123456", "institutional": False},
        **changes,
    }


def test_a_register_may_send_family_facts_with_or_without_lookup_id() -> None:
    outcome = check("person.family", family(), roles=REGISTER)
    assert isinstance(outcome, Valid) and isinstance(outcome.message, PersonFamily)
    body = family(parents=[], address=None)
    del body["lookup_id"]
    assert isinstance(check("person.family", body, roles=REGISTER), Valid)


def test_a_reporter_may_not_send_family_facts() -> None:
    assert codes(check("person.family", family(), roles=REPORTER)) == {("type", "not_authorized")}


def test_every_parent_is_checked_with_the_11_proef_at_its_index() -> None:
    outcome = check(
        "person.family",
        family(bsn="111222334", parents=[GOOD_PARENT, "123456789", "12345"]),
        roles=REGISTER,
    )
    assert codes(outcome) == {
        ("bsn", "bsn_checksum"),
        ("parents.1", "bsn_checksum"),
        ("parents.2", "schema"),
    }


@pytest.mark.parametrize(
    ("address", "loc"),
    [
        ({"id": "036320000012345", "institutional": False}, "address.id"),
        ({"id": "0363200000123456"}, "address.institutional"),
        ({"id": 363200000123456, "institutional": False}, "address.id"),
        ("0363200000123456", "address"),
    ],
)
def test_the_address_must_be_a_bag_id_with_the_institutional_mark(
    address: object, loc: str
) -> None:
    assert codes(check("person.family", family(address=address), roles=REGISTER)) == {
        (loc, "schema")
    }


def test_at_most_four_parents() -> None:
    body = family(parents=[GOOD_PARENT] * 5)
    assert codes(check("person.family", body, roles=REGISTER)) == {("parents", "schema")}


# --- region settings ------------------------------------------------------------------


def test_region_defaults_to_parent_matching() -> None:
    config = parse_region(region_document("t"))
    assert [r.value for r in config.region.family_match] == ["parent"]
    assert config.region.excluded_addresses == []
    assert [p.id for p in config.population_registers] == ["brp"]


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ({"family_match": ["parent", "cousin"]}, "region.family_match[2]"),
        ({"family_match": ["parent", "parent"]}, "family_match names a value more than once"),
        ({"family_match": "parent"}, "region.family_match"),
        (
            {"excluded_addresses": ["0363 2000 0012 3456"]},
            "region.excluded_addresses[1]: Value error, must be a BAG id of 16 digits",
        ),
        ({"excluded_addresses": ["0363200000123456"] * 2}, "excluded_addresses names a value"),
    ],
)
def test_bad_family_settings_are_refused_saying_why(rules: dict[str, Any], says: str) -> None:
    with pytest.raises(RegionConfigError) as refused:
        parse_region(region_document("t", **rules))
    assert says in str(refused.value)


def test_family_matching_can_be_turned_off_or_widened() -> None:
    off = parse_region(region_document("t", family_match=[]))
    assert not off.region.family_matching
    wide = parse_region(
        region_document("t", family_match=["parent", "address"], excluded_addresses=["1" * 16])
    )
    assert [r.value for r in wide.region.family_match] == ["parent", "address"]


# --- the pending lookup's BSN ---------------------------------------------------------


def test_a_sealed_bsn_opens_only_with_the_key_and_its_nonce() -> None:
    keys = Pseudonymizer("secret")
    sealed = keys.seal_bsn("nonce-1", "111222333")
    assert b"111222333" not in sealed
    assert keys.open_bsn("nonce-1", sealed) == "111222333"
    assert keys.seal_bsn("nonce-2", "111222333") != sealed
    try:
        wrong = Pseudonymizer("other").open_bsn("nonce-1", sealed)
    except UnicodeDecodeError:
        wrong = None
    assert wrong != "111222333"


def test_parent_and_address_hashes_differ_from_the_youth_hash() -> None:
    keys = Pseudonymizer("secret")
    assert keys.parent_by_bsn("111222333") != keys.youth_by_bsn("111222333")
    assert keys.address_by_bag_id("0363200000123456") != keys.parent_by_bsn("0363200000123456")


# --- what is said ---------------------------------------------------------------------


def test_the_lookup_goes_to_registers_only_and_carries_the_bsn() -> None:
    config = parse_region(region_document("t"))
    lookup_id = uuid.uuid4()
    sent = lookup_messages(config, lookup_id, "111222333", melding(1, "school").registered_at)
    assert [m.routing_key for m in sent] == ["brp"]
    body = load_outbound(sent[0].body)
    assert body.model_dump() == {
        "type": "person.lookup",
        "lookup_id": str(lookup_id),
        "bsn": "111222333",
    }


def test_family_notices_and_e_mails_never_name_the_other_child() -> None:
    config = parse_region(region_document("t"))
    ours, theirs = melding(4, "school"), melding(9, "jeugdteam")
    event = family_event(
        family_match_id=uuid.uuid4(),
        relation="parent",
        pair=(participant(config, ours), participant(config, theirs)),
        municipalities=[config.municipalities_by_code["0363"]] * 2,
    )
    assert [(n.partner_id, n.body["melding_ref"]) for n in event.notices] == [
        ("school", "school-4"),
        ("jeugdteam", "jeugdteam-9"),
    ]
    for notice, other_ref in zip(event.notices, ("jeugdteam-9", "school-4"), strict=True):
        assert other_ref not in json.dumps(notice.body)
        assert load_outbound(json.dumps(notice.body).encode()).type == "family.notice"
    # One e-mail per reporter, one per municipality's coordinator (the same here).
    assert [e.template for e in event.emails] == [
        "family_reporter",
        "family_reporter",
        "family_coordinator",
    ]
    for job in event.emails:
        subject, text = compose(job.data)
        assert "gezinsmatch" in subject.lower()
        if job.to == ours.reporter.email:
            assert "school-4" in text and "jeugdteam-9" not in text
            assert theirs.reporter.email in text


def test_the_schema_export_and_asyncapi_document_carry_the_family_messages(
    tmp_path: Any,
) -> None:
    from shared.contract.asyncapi import asyncapi_document
    from shared.contract.schema_export import export_schemas

    names = {path.name for path in export_schemas(tmp_path)}
    assert {
        "person.family.schema.json",
        "person.lookup.schema.json",
        "family.notice.schema.json",
    } <= names
    family = json.loads((tmp_path / "person.family.schema.json").read_text())
    assert "parents.<i> passes the 11-proef (bsn_checksum)" in family["description"]
    document = asyncapi_document()
    messages = document["components"]["messages"]
    assert {"person.family", "person.lookup", "family.notice"} <= set(messages)
    inbound = document["channels"]["vi.inbound"]["messages"]
    assert "person.family" in inbound and "person.lookup" not in inbound
