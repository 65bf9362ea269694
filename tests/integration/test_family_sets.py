"""A batch of family facts handled as a set (services/matcher/handlers/family.py and
the set search for relatives in services/matcher/family.py) must end in the state,
and send the messages, of the same facts handled one at a time. Both ways run on the
same database, reset in between, and are compared row for row and message for
message."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.contract.inbound import PersonFamily
from shared.envelopes import NOTIFY_BUNDLE_TYPE, NOTIFY_TYPE, Command, NotifyEvent, unpack
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from tests.conftest import System, apply_region
from tests.integration.sets_support import NOW, REPORTED, command, handled
from tests.support import RegionUnderTest, no_consumers, region_document, register_body, valid_bsn

HOME = "0363200000123456"
SHELTER = "0363200000999999"
EXCLUDED = "0363200000777777"


def _parent(n: int) -> str:
    return valid_bsn(95_000 + n)


def _bsn(youth: int) -> str:
    return valid_bsn(9_300 + youth)


def _register(partner: str, ref: str, youth: int) -> Command:
    return command(partner, register_body(ref, bsn=_bsn(youth), reported_at=REPORTED))


def _facts(
    youth: int, parents: list[int], address: str | None = None, institutional: bool = False
) -> Command:
    body = {
        "type": "person.family",
        "bsn": _bsn(youth),
        "parents": [_parent(p) for p in parents],
        "address": None if address is None else {"id": address, "institutional": institutional},
    }
    return command("brp", body)


# Before the batch: meldingen on youths 1-18 (youth 9 only an ended one), and youth 1's
# facts already stored.
SEED = [
    _register("school", "S-1", 1),
    _register("jeugdteam", "T-2", 2),
    _register("school", "S-3", 3),
    _register("jeugdteam", "T-4", 4),
    _register("school", "S-5", 5),
    _register("jeugdteam", "T-6", 6),
    _register("school", "S-7", 7),
    _register("school", "S-8", 8),
    _register("jeugdteam", "T-9", 9),
    command(
        "jeugdteam", {"type": "melding.withdraw", "melding_ref": "T-9", "reason": "risk_ended"}
    ),
    _register("school", "S-10", 10),
    _register("jeugdteam", "T-11", 11),
    _register("school", "S-12", 12),
    _register("jeugdteam", "T-13", 13),
    _register("school", "S-14", 14),
    _register("huisarts", "H-14", 14),
    _register("jeugdteam", "T-15", 15),
    _register("jgz", "G-16", 16),
    _register("jeugdteam", "T-17", 17),
    _register("school", "S-18", 18),
    _facts(1, [1]),
]


def _batch() -> list[Command]:
    duplicate = _facts(17, [9])
    return [
        # Siblings both answered in the batch: one pair, signalled once.
        _facts(2, [2]),
        _facts(3, [2, 3]),
        # A sibling of a youth whose facts were stored before.
        _facts(4, [1]),
        # Two facts on one youth: the later replaces the earlier.
        _facts(5, [], "0363200000555555"),
        _facts(5, [4]),
        _facts(6, [4]),
        # One partner on both siblings: no pair; an ended melding takes no part.
        _facts(7, [5]),
        _facts(8, [5]),
        _facts(9, [5]),
        # A shared home matches; a shelter or an excluded address never does.
        _facts(10, [], HOME),
        _facts(11, [], HOME),
        _facts(12, [], SHELTER, institutional=True),
        _facts(13, [], SHELTER, institutional=True),
        _facts(15, [], EXCLUDED),
        _facts(16, [], EXCLUDED),
        # Three children of one parent, one with two partners involved.
        _facts(14, [6]),
        _facts(15, [6]),
        _facts(16, [6]),
        # Nothing stored on this person; and the same message twice.
        _facts(99, [7]),
        duplicate,
        duplicate.model_copy(),
        _facts(17, [9], HOME),
    ]


def _messages(sent: list[OutboundMessage]) -> dict[str, Any]:
    """Receipts in the order emitted, without their random ids; the family events as a
    set (one by one, each transaction signals its own pairs, in another order), without
    their random ids and the registration times (the seed transactions' own)."""
    receipts, events = [], []
    for message in sent:
        if message.message_type in (NOTIFY_TYPE, NOTIFY_BUNDLE_TYPE):
            for event in unpack(
                message.body, message.message_type, NOTIFY_BUNDLE_TYPE, NotifyEvent
            ):
                doc = event.model_dump(mode="json")
                events.append(json.dumps(_without_ids(doc), sort_keys=True))
        else:
            assert message.message_type == "receipt", message.message_type
            body = json.loads(message.body)
            receipts.append((message.routing_key, body["status"], json.dumps(body.get("errors"))))
    return {"receipts": receipts, "events": sorted(events)}


def _without_ids(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: _without_ids(v)
            for k, v in doc.items()
            if k not in ("family_match_id", "event_id", "match_id", "message_id", "registered_at")
        }
    if isinstance(doc, list):
        return [_without_ids(v) for v in doc]
    return doc


async def _state(db: asyncpg.Connection[Any]) -> dict[str, Any]:
    return {
        "facts": [
            tuple(r)
            for r in await db.fetch(
                """SELECT y.identity_hash, f.parent_hashes, f.address_hash, f.institutional,
                          f.received_at
                   FROM family_facts f JOIN youth y ON y.id = f.youth_id ORDER BY 1"""
            )
        ],
        "lookups": [
            tuple(r)
            for r in await db.fetch(
                """SELECT y.identity_hash, l.sent_at
                   FROM family_lookup l JOIN youth y ON y.id = l.youth_id ORDER BY 1"""
            )
        ],
        "family_matches": sorted(
            tuple(r)
            for r in await db.fetch(
                """SELECT lo.melding_ref, hi.melding_ref, f.relation, f.formed_at
                   FROM family_match f JOIN melding lo ON lo.id = f.melding_low
                   JOIN melding hi ON hi.id = f.melding_high"""
            )
        ),
        "audit": sorted(
            tuple(r)
            for r in await db.fetch(
                "SELECT action, actor, melding_ref, youth_ref, detail::text FROM audit_log"
            )
        ),
        "stats": sorted(
            tuple(r) for r in await db.fetch("SELECT kind, sector, municipality FROM stats_fact")
        ),
    }


async def _outcome(
    runtime: Runtime, db: asyncpg.Connection[Any], commands: list[Command], *, together: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    if not together:
        # The order a batch of facts only is handled in (stable for one youth).
        def identity(c: Command) -> bytes:
            assert isinstance(c.message, PersonFamily)
            return runtime.pseudonyms.youth_by_bsn(c.message.bsn)

        commands = sorted(commands, key=identity)
    sent = await handled(runtime, db, SEED, commands, together=together)
    return await _state(db), _messages(sent)


async def test_family_facts_as_a_set_end_as_one_by_one(
    system: System, test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    await apply_region(
        test_region,
        region_document(
            test_region.user_prefix,
            family_match=["parent", "address"],
            excluded_addresses=[EXCLUDED],
        ),
    )
    runtime = await system.start("tool", setup=no_consumers)
    commands = _batch()
    state_together, sent_together = await _outcome(runtime, db, commands, together=True)
    state_alone, sent_alone = await _outcome(runtime, db, commands, together=False)

    assert state_together == state_alone
    assert sent_together == sent_alone
    # The batch reaches the cases it is written for.
    statuses = [status for _, status, _ in sent_alone["receipts"]]
    assert {"accepted", "rejected", "duplicate"} <= set(statuses), statuses
    assert state_alone["family_matches"] == [
        (low, high, relation, NOW)
        for low, high, relation in sorted(
            [
                ("S-1", "T-4", "parent"),
                ("T-2", "S-3", "parent"),
                ("S-5", "T-6", "parent"),
                ("S-10", "T-11", "address"),
                ("S-10", "T-17", "address"),
                ("S-14", "T-15", "parent"),
                ("S-14", "G-16", "parent"),
                ("H-14", "T-15", "parent"),
                ("H-14", "G-16", "parent"),
                ("T-15", "G-16", "parent"),
            ]
        )
    ]
    assert len(sent_alone["events"]) == len(state_alone["family_matches"])
    # Every answered youth's lookup is gone; the unanswered youth's remains.
    assert len(state_alone["lookups"]) == 1
