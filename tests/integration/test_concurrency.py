"""Two meldingen on one youth at the same moment, handled by two matcher replicas:
the youth's row lock makes one of them see the other, every time."""

from __future__ import annotations

import asyncio
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

YOUTHS = 500


async def drain(client: PartnerClient, receipts: int, notices: int) -> list[Received]:
    """Read until the expected numbers arrived (or time is up), then a quiet second.

    Like a partner, drops a message whose message_id it has seen (at-least-once
    delivery: the outbox relay may publish a row the fast path also published), after
    checking that the copy is identical."""
    got: dict[str, Received] = {}
    counts: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 45

    def keep(message: Received) -> None:
        assert message.message_id is not None
        seen = got.get(message.message_id)
        if seen is None:
            got[message.message_id] = message
            counts[message.type] += 1
        else:
            assert seen.body == message.body

    while counts["receipt"] < receipts or counts["match.notice"] < notices:
        remaining = deadline - loop.time()
        assert remaining > 0, f"{client.partner_id}: only {dict(counts)} arrived"
        try:
            keep(await client.next(min(remaining, 1.0)))
        except TimeoutError:
            continue
    for message in await client.quiet(1.0):
        keep(message)
    return list(got.values())


async def test_simultaneous_meldingen_on_two_replicas_form_one_group_per_youth(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    handled: Counter[int] = Counter()
    failures: list[str] = []

    def replica(number: int) -> Callable[[Runtime], Awaitable[None]]:
        async def setup(runtime: Runtime) -> None:
            real = matcher_of(runtime)

            async def handler(commands: Sequence[Command]) -> None:
                # Ingest may forward several commands in one message.
                handled[number] += len(commands)
                try:
                    await real(commands)
                except Exception as exc:  # a deadlock or race would show up here
                    failures.append(describe_error(exc))
                    raise

            runtime.consume(MATCHER_QUEUE, command_codec(Lane.LIVE), handler, batch_size=1)

        return setup

    for name in ("ingest", "ingest", "notifier"):
        await system.start(name)
    await system.start("matcher", setup=replica(1))
    await system.start("matcher", setup=replica(2))
    school, team = partners["school"], partners["jeugdteam"]

    def body(prefix: str, i: int) -> dict[str, Any]:
        return register_body(
            f"{prefix}-{i}", bsn=valid_bsn(10_000 + i), email=f"{prefix.lower()}@x.example"
        )

    await asyncio.gather(
        *(
            client.send(body(prefix, i))
            for i in range(YOUTHS)
            for client, prefix in ((school, "S"), (team, "T"))
        )
    )
    school_got, team_got = await asyncio.gather(
        drain(school, YOUTHS, YOUTHS), drain(team, YOUTHS, YOUTHS)
    )

    for prefix, got in (("S", school_got), ("T", team_got)):
        receipts = [m.body for m in got if m.type == "receipt"]
        assert len(receipts) == YOUTHS
        assert all(r["status"] == "accepted" for r in receipts), [
            r for r in receipts if r["status"] != "accepted"
        ][:3]
        notices = [m for m in got if m.type == "match.notice"]
        # Exactly one match.notice per partner per youth, each for its own melding.
        refs = Counter(n.body["melding_ref"] for n in notices)
        assert refs == Counter(f"{prefix}-{i}" for i in range(YOUTHS))
        assert all(len(n.body["counterparts"]) == 1 for n in notices)
        assert [m for m in got if m.type not in ("receipt", "match.notice")] == []

    # Both partners of a youth see the same match_id, and each youth has one group.
    by_youth: dict[str, set[str]] = {}
    for n in (m for m in school_got + team_got if m.type == "match.notice"):
        by_youth.setdefault(n.body["melding_ref"].split("-")[1], set()).add(n.body["match_id"])
    assert len(by_youth) == YOUTHS
    assert all(len(ids) == 1 for ids in by_youth.values())
    groups = await db.fetch(
        """SELECT youth_id, count(*) AS n, bool_and(ended_at IS NULL) AS open
           FROM match_group GROUP BY youth_id"""
    )
    assert len(groups) == YOUTHS
    assert all(g["n"] == 1 and g["open"] for g in groups)
    assert await db.fetchval("SELECT count(*) FROM youth") == YOUTHS
    assert await db.fetchval("SELECT count(*) FROM match_member") == 2 * YOUTHS
    # Both replicas took part, and nothing had to be retried (no deadlock, no race).
    assert handled[1] > 0 and handled[2] > 0 and sum(handled.values()) == 2 * YOUTHS
    assert failures == []
    stored = {str(r["id"]) for r in await db.fetch("SELECT id FROM match_group")}
    assert {next(iter(ids)) for ids in by_youth.values()} == stored


KNOWN_YOUTHS = 100


async def test_simultaneous_meldingen_on_known_youths_join_one_group(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """The youths are already known (a third partner has a melding on each): no insert
    to wait on, so only the row lock keeps the two newcomers apart."""
    failures: list[str] = []

    async def matcher(runtime: Runtime) -> None:
        real = matcher_of(runtime)

        async def handler(commands: Sequence[Command]) -> None:
            try:
                await real(commands)
            except Exception as exc:
                failures.append(describe_error(exc))
                raise

        runtime.consume(MATCHER_QUEUE, command_codec(Lane.LIVE), handler, batch_size=1)

    for name in ("ingest", "ingest", "notifier"):
        await system.start(name)
    for _ in range(2):
        await system.start("matcher", setup=matcher)
    gp, school, team = partners["huisarts"], partners["school"], partners["jeugdteam"]
    bsns = [valid_bsn(20_000 + i) for i in range(KNOWN_YOUTHS)]
    await asyncio.gather(*(gp.send(register_body(f"H-{i}", bsn=b)) for i, b in enumerate(bsns)))
    assert len(await drain(gp, KNOWN_YOUTHS, 0)) == KNOWN_YOUTHS

    await asyncio.gather(
        *(
            client.send(register_body(f"{prefix}-{i}", bsn=b))
            for i, b in enumerate(bsns)
            for client, prefix in ((school, "S"), (team, "T"))
        )
    )
    # Per youth: the first newcomer forms the match with the GP (1 notice each), the
    # second joins it (a notice for it, and one for each of the two before it).
    gp_got, school_got, team_got = await asyncio.gather(
        drain(gp, 0, 2 * KNOWN_YOUTHS),
        drain(school, KNOWN_YOUTHS, KNOWN_YOUTHS),
        drain(team, KNOWN_YOUTHS, KNOWN_YOUTHS),
    )
    notices = [m.body for m in gp_got + school_got + team_got if m.type == "match.notice"]
    assert len(notices) == 5 * KNOWN_YOUTHS
    by_youth: dict[str, list[dict[str, Any]]] = {}
    for n in notices:
        by_youth.setdefault(n["melding_ref"].split("-")[1], []).append(n)
    for i, group in by_youth.items():
        assert len({n["match_id"] for n in group}) == 1, i
        own = Counter(n["melding_ref"][0] for n in group)
        assert own["H"] == 2 and own["S"] + own["T"] == 3, (i, own)
        # Exactly one newcomer was told of two counterparts: it came second.
        assert sorted(len(n["counterparts"]) for n in group) == [1, 1, 1, 1, 2], i
    assert failures == []
    groups = await db.fetch("SELECT youth_id, count(*) AS n FROM match_group GROUP BY youth_id")
    assert len(groups) == KNOWN_YOUTHS and all(g["n"] == 1 for g in groups)
    assert await db.fetchval("SELECT count(*) FROM match_member") == 3 * KNOWN_YOUTHS
