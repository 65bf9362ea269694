"""A run of registrations handled as a set (services/matcher/staging.py) must end in
exactly the state, and send exactly the messages, of the same registrations handled
one at a time. Both ways run on the same database, reset in between, and are compared
row for row and message for message."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.matcher.handlers.register import identity_of
from shared.contract.inbound import MeldingRegister, Youth
from shared.envelopes import NOTIFY_BUNDLE_TYPE, NOTIFY_TYPE, Command, NotifyEvent, unpack
from shared.outgoing import OutboundMessage
from shared.service import Runtime
from tests.conftest import System, apply_region
from tests.integration.sets_support import REPORTED, command, handled
from tests.support import (
    RegionUnderTest,
    no_consumers,
    region_document,
    register_body,
    valid_bsn,
)

_REGISTERED_AT = re.compile(r'"registered_at": "[^"]*"')
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _register(partner: str, ref: str, youth: int, **facts: Any) -> Command:
    return command(
        partner,
        register_body(ref, bsn=valid_bsn(9_100 + youth), reported_at=REPORTED, **facts),
    )


def _withdraw(partner: str, ref: str) -> Command:
    body = {"type": "melding.withdraw", "melding_ref": ref, "reason": "risk_ended"}
    return command(partner, body)


# Before the run: an open group without a lead on youth 1 (neither sector has
# priority), an archived melding that has not signalled on youth 2, and one that has
# on youth 3.
SEED = [
    _register("school", "P-1", 1),
    _register("huisarts", "P-2", 1),
    _register("jgz", "P-3", 2),
    _withdraw("jgz", "P-3"),
    _register("huisarts", "P-4", 3),
    _withdraw("huisarts", "P-4"),
    _register("school", "P-5", 3),
]


def _scenario(seed: int) -> list[Command]:
    duplicate = _register("school", "E-dup", 8)
    edge_cases = [
        # jeugdhulp joins the lead-less group of youth 1: it gets the lead.
        _register("jeugdteam", "E-1", 1),
        # Two newcomers on youth 2: only the first hears of the archived melding, once.
        _register("school", "E-2", 2),
        _register("huisarts", "E-3", 2),
        _register("huisarts", "E-4", 3),
        # A group forms on a new youth without a lead; the third member brings one.
        _register("school", "E-5", 4),
        _register("huisarts", "E-6", 4),
        _register("jgz", "E-7", 4),
        # The youth's first melding is refused (a used ref): the next one's facts count.
        _register("jgz", "P-3", 5, birth_date="2011-01-01", municipality="0599"),
        _register("huisarts", "E-8", 5, birth_date="2012-02-02", municipality="0344"),
        # Refused alone: no youth row may stay behind.
        _register("huisarts", "P-4", 6),
        # The same organisation twice on one youth.
        _register("school", "E-9", 7),
        _register("school", "E-10", 7),
        # A youth's facts change between two meldingen in one run.
        _register("jgz", "E-11", 7, birth_date="2013-03-03", municipality="0599"),
        duplicate,
        duplicate.model_copy(),  # the same message twice
    ]
    rng = random.Random(seed)
    partners = ["school", "jeugdteam", "jgz", "huisarts"]
    generated = []
    for n in range(40):
        ref = f"G-{rng.randrange(n)}" if n and rng.random() < 0.1 else f"G-{n}"
        generated.append(
            _register(
                rng.choice(partners),
                ref,
                rng.randrange(10, 20),
                birth_date=rng.choice(["2014-05-01", "2013-04-02"]),
                municipality=rng.choice(["0363", "0599"]),
            )
        )
    # Interleaved at random, each list keeping its own order.
    slots = [True] * len(edge_cases) + [False] * len(generated)
    rng.shuffle(slots)
    edge, other = iter(edge_cases), iter(generated)
    return [next(edge) if is_edge else next(other) for is_edge in slots]


def _messages(sent: Sequence[OutboundMessage]) -> dict[str, list[Any]]:
    """Receipts and notify events in the order emitted, with every id replaced by the
    order it first appeared in (match ids are random; message ids are derived), and
    without registration times (the transaction's, so they differ by design)."""
    receipts, events, lookups = [], [], []
    for message in sent:
        if message.message_type == "person.lookup":
            # Sent as the transaction ends (services/matcher/family.py), so in another
            # place among the receipts: compared as a set, without their random ids.
            lookups.append((message.routing_key, json.loads(message.body)["bsn"]))
        elif message.message_type in (NOTIFY_TYPE, NOTIFY_BUNDLE_TYPE):
            events += unpack(message.body, message.message_type, NOTIFY_BUNDLE_TYPE, NotifyEvent)
        else:
            receipts.append([message.routing_key, json.loads(message.body)])
    text = json.dumps(
        {
            "receipts": receipts,
            "events": [e.model_dump(mode="json") for e in events],
            "lookups": sorted(lookups),
        }
    )
    text = _REGISTERED_AT.sub('"registered_at": null', text)
    labels: dict[str, str] = {}
    text = _UUID.sub(lambda m: labels.setdefault(m.group(0), f"id-{len(labels)}"), text)
    return dict(json.loads(text))


async def _state(db: asyncpg.Connection[Any]) -> dict[str, Any]:
    groups = {
        r["id"]: tuple(r["members"])
        for r in await db.fetch(
            """SELECT g.id, ARRAY(SELECT m.melding_ref FROM match_member mm
                                  JOIN melding m ON m.id = mm.melding_id
                                  WHERE mm.match_id = g.id ORDER BY 1) AS members
               FROM match_group g"""
        )
    }
    return {
        "youths": [
            tuple(r)
            for r in await db.fetch(
                "SELECT identity_hash, has_bsn, birth_date, municipality FROM youth ORDER BY 1"
            )
        ],
        # In id order, but not the ids: a set of registrations leaves gaps elsewhere.
        "meldingen": [
            tuple(r)
            for r in await db.fetch(
                """SELECT m.partner_id, m.melding_ref, y.identity_hash, m.state,
                          m.archive_signalled, m.reported_at, m.expires_on, m.inform_targets,
                          m.reporter_name, m.reporter_email, m.reporter_phone
                   FROM melding m JOIN youth y ON y.id = m.youth_id ORDER BY m.id"""
            )
        ],
        "groups": sorted(
            (
                groups[r["id"]],
                r["youth"],
                r["lead"],
                r["formed_at"],
                r["ended_at"],
                r["lead_since"],
                r["lead_needed_since"],
            )
            for r in await db.fetch(
                """SELECT g.id, y.identity_hash AS youth, l.melding_ref AS lead, g.formed_at,
                          g.ended_at, g.lead_since, g.lead_needed_since
                   FROM match_group g JOIN youth y ON y.id = g.youth_id
                   LEFT JOIN melding l ON l.id = g.lead_melding_id"""
            )
        ),
        "audit": sorted(
            (r["action"], r["actor"], r["melding_ref"], r["youth_ref"], groups.get(r["match_id"]))
            for r in await db.fetch(
                "SELECT action, actor, melding_ref, youth_ref, match_id FROM audit_log"
            )
        ),
        "stats": sorted(
            tuple(r) for r in await db.fetch("SELECT kind, sector, municipality FROM stats_fact")
        ),
    }


async def _outcome(
    runtime: Runtime, db: asyncpg.Connection[Any], commands: list[Command], *, together: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    if not together and all(isinstance(c.message, MeldingRegister) for c in commands):
        # The order a batch of registrations only is handled in.
        commands = sorted(commands, key=lambda c: identity_of(_youth(c), runtime.pseudonyms))
    sent = await handled(runtime, db, SEED, commands, together=together)
    return await _state(db), _messages(sent)


async def test_registrations_as_a_set_end_as_one_by_one(
    system: System, test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    await apply_region(
        test_region, region_document(test_region.user_prefix, regie_priority=["jeugdhulp", "jgz"])
    )
    runtime = await system.start("tool", setup=no_consumers)
    for seed in (1, 2, 3):
        commands = _scenario(seed)
        state_together, sent_together = await _outcome(runtime, db, commands, together=True)
        state_alone, sent_alone = await _outcome(runtime, db, commands, together=False)

        assert state_together == state_alone, f"seed {seed}"
        assert sent_together == sent_alone, f"seed {seed}"
        # The scenario reaches the cases it is written for.
        statuses = [r[1]["status"] for r in sent_alone["receipts"]]
        assert {"accepted", "rejected", "duplicate"} <= set(statuses), statuses
        groups = state_alone["groups"]
        assert any(lead == "E-1" for _, _, lead, *_ in groups)  # lead set on a stored group
        assert any(lead == "E-7" for _, _, lead, *_ in groups)  # on a group formed in the run
        youths = {y[0]: y for y in state_alone["youths"]}
        refused_first = identity_of(_youth(_by_ref(commands, "E-8")), runtime.pseudonyms)
        assert str(youths[refused_first][2]) == "2012-02-02"
        assert youths[refused_first][3] == "0344"
        refused_alone = identity_of(_youth(_register("huisarts", "P-4", 6)), runtime.pseudonyms)
        assert refused_alone not in youths
        archived = [m for m in state_alone["meldingen"] if m[1] == "P-3"]
        assert archived and archived[0][4] is True  # it signalled
        signalled = [a for a in state_alone["audit"] if a[0] == "signalled" and a[2] == "P-3"]
        assert len(signalled) == 1  # once


def _mixed_scenario(seed: int) -> list[Command]:
    """Registrations with withdrawals and lead claims in between, which split a batch
    into several runs of registrations handled as a set."""
    rng = random.Random(seed)
    partners = ["school", "jeugdteam", "jgz", "huisarts"]
    commands: list[Command] = []
    registered: list[tuple[str, str]] = []
    for n in range(60):
        roll = rng.random()
        if registered and roll < 0.15:
            partner, ref = rng.choice(registered)
            commands.append(_withdraw(partner, ref))
        elif registered and roll < 0.25:
            partner, ref = rng.choice(registered)
            commands.append(command(partner, {"type": "regie.claim", "melding_ref": ref}))
        else:
            partner, ref = rng.choice(partners), f"M-{n}"
            commands.append(_register(partner, ref, rng.randrange(1, 8)))
            registered.append((partner, ref))
    return commands


async def test_mixed_batches_end_as_one_by_one(
    system: System, test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    runtime = await system.start("tool", setup=no_consumers)
    for seed in (4, 5):
        commands = _mixed_scenario(seed)
        state_together, sent_together = await _outcome(runtime, db, commands, together=True)
        state_alone, sent_alone = await _outcome(runtime, db, commands, together=False)

        assert state_together == state_alone, f"seed {seed}"
        assert sent_together == sent_alone, f"seed {seed}"
        # The scenario reaches what it is written for: withdrawals that took effect
        # between registrations, and matches.
        assert any(a[0] in ("archived", "purged") for a in state_alone["audit"])
        assert any(a[0] == "signalled" for a in state_alone["audit"])


def _youth(registered: Command) -> Youth:
    assert isinstance(registered.message, MeldingRegister)
    return registered.message.youth


def _by_ref(commands: Sequence[Command], ref: str) -> Command:
    return next(c for c in commands if getattr(c.message, "melding_ref", None) == ref)
