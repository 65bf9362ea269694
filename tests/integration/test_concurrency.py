"""Two meldingen on one youth at the same moment, handled by two matcher replicas:
the youth's row lock makes one of them see the other, every time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from services.matcher.handler import MatcherHandler
from shared.amqp.consumer import Delivery, describe_error
from shared.amqp.topology import MATCHER_QUEUE
from shared.partner_client import PartnerClient, Received
from shared.service import Runtime
from tests.conftest import System
from tests.support import register_body, valid_bsn

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
            real = MatcherHandler(runtime)

            async def handler(delivery: Delivery) -> None:
                handled[number] += 1
                try:
                    await real(delivery)
                except Exception as exc:  # a deadlock or race would show up here
                    failures.append(describe_error(exc))
                    raise

            runtime.consume(MATCHER_QUEUE, handler)

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
