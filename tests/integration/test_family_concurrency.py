"""Siblings registered at the same moment, on two matcher replicas, with the register
answering their lookups as they come (so the two children's facts are handled side by
side, in any order): exactly one family match per pair, and nothing retried."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from services.matcher.handler import command_codec
from shared.amqp.topology import MATCHER_QUEUE
from shared.envelopes import Command
from shared.lanes import Lane
from shared.logs import describe_error
from shared.partner_client import PartnerClient, Received
from shared.service import Runtime
from tests.conftest import System
from tests.support import matcher_of, register_body, valid_bsn

FAMILIES = 150


async def collect(client: PartnerClient, want: Counter[str]) -> list[Received]:
    """Read until `want` (counts per type) arrived, then a quiet second; a copy of a
    message_id seen before is dropped, as a partner does."""
    got: dict[str, Received] = {}
    counts: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while any(counts[t] < n for t, n in want.items()):
        remaining = deadline - loop.time()
        assert remaining > 0, f"{client.partner_id}: only {dict(counts)} arrived"
        try:
            message = await client.next(min(remaining, 1.0))
        except TimeoutError:
            continue
        assert message.message_id is not None
        if message.message_id not in got:
            got[message.message_id] = message
            counts[message.type] += 1
    for message in await client.quiet(1.0):
        assert message.message_id is not None
        got.setdefault(message.message_id, message)
    return list(got.values())


async def test_siblings_at_the_same_moment_form_one_family_match_per_pair(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    failures: list[str] = []
    handled: Counter[int] = Counter()

    def replica(number: int) -> Callable[[Runtime], Awaitable[None]]:
        async def setup(runtime: Runtime) -> None:
            real = matcher_of(runtime)

            async def handler(commands: Sequence[Command]) -> None:
                handled[number] += 1
                try:
                    await real(commands)
                except Exception as exc:  # a deadlock or a race would show up here
                    failures.append(describe_error(exc))
                    raise

            runtime.consume(MATCHER_QUEUE, command_codec(Lane.LIVE), handler, batch_size=1)

        return setup

    for name in ("ingest", "ingest", "notifier"):
        await system.start(name)
    await system.start("matcher", setup=replica(1))
    await system.start("matcher", setup=replica(2))
    school, team, brp = partners["school"], partners["jeugdteam"], partners["brp"]
    first = {valid_bsn(30_000 + i): i for i in range(FAMILIES)}
    second = {valid_bsn(40_000 + i): i for i in range(FAMILIES)}
    parent_of = {bsn: valid_bsn(50_000 + i) for d in (first, second) for bsn, i in d.items()}

    async def register_answering() -> list[Received]:
        """The register answers every lookup at once, in the order they come; like a
        partner it drops a copy of a message it has seen (delivery is at least once)."""
        answered: set[str] = set()
        seen: dict[str | None, Received] = {}
        while len(answered) < 2 * FAMILIES:
            message = await brp.next(30)
            if message.message_id in seen:
                continue
            seen[message.message_id] = message
            if message.type != "person.lookup" or message.body["lookup_id"] in answered:
                continue
            answered.add(message.body["lookup_id"])
            bsn = message.body["bsn"]
            answer = {
                "type": "person.family",
                "lookup_id": message.body["lookup_id"],
                "bsn": bsn,
                "parents": [parent_of[bsn]],
                "address": None,
            }
            await brp.send(answer)
        return list(seen.values())

    responder = asyncio.create_task(register_answering())
    order = list(range(FAMILIES))
    random.Random(7).shuffle(order)
    firsts, seconds = list(first), list(second)
    await asyncio.gather(
        *(
            send
            for i in order
            for send in (
                school.send(register_body(f"S-{i}", bsn=firsts[i], email="s@x.example")),
                team.send(register_body(f"T-{i}", bsn=seconds[i], email="t@x.example")),
            )
        )
    )
    want = Counter({"receipt": FAMILIES, "family.notice": FAMILIES})
    school_got, team_got = await asyncio.gather(collect(school, want), collect(team, want))
    lookups = [m for m in await responder if m.type == "person.lookup"]
    known = {m.message_id for m in lookups}
    for message in await brp.quiet(1.0):
        if message.type == "person.lookup" and message.message_id not in known:
            lookups.append(message)

    # One lookup per youth, and exactly one family.notice per partner per family.
    assert Counter(m.body["bsn"] for m in lookups) == Counter({b: 1 for b in parent_of})
    for prefix, got in (("S", school_got), ("T", team_got)):
        receipts = [m.body for m in got if m.type == "receipt"]
        assert [r for r in receipts if r["status"] != "accepted"] == []
        notices = [m.body for m in got if m.type == "family.notice"]
        assert Counter(n["melding_ref"] for n in notices) == Counter(
            f"{prefix}-{i}" for i in range(FAMILIES)
        )
        assert [m.type for m in got if m.type not in ("receipt", "family.notice")] == []
    pairs = {
        n.body["melding_ref"].split("-")[1]: n.body["family_match_id"]
        for n in school_got
        if n.type == "family.notice"
    }
    for n in team_got:
        if n.type == "family.notice":
            assert pairs[n.body["melding_ref"].split("-")[1]] == n.body["family_match_id"]
    assert await db.fetchval("SELECT count(*) FROM family_match") == FAMILIES
    assert await db.fetchval("SELECT count(*) FROM family_lookup") == 0
    # Both replicas took part and nothing had to be retried (no deadlock, no race).
    assert handled[1] > 0 and handled[2] > 0
    assert failures == []
