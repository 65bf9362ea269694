"""Matcher throughput against a small and a large index.

The stored meldingen are seeded straight into the youth and melding tables (COPY), as
the matcher would have left them; then pre-validated commands (what ingest hands on)
are queued on vi.matcher with the services' login while no matcher runs, the matcher
replicas start, and the receipts they write are counted. Half of the commands register
on a stored youth from another partner (a match), half on a new youth.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aio_pika
import asyncpg

from bench.context import Context, Rate, replica_counts, steady_rate
from bench.env import MUNICIPALITIES, PSEUDONYM_KEY, REPORTER_IDS, BenchEnv
from bench.procs import CpuMeter, ServiceSet
from bench.traffic import BIRTH_BASE, Sink, melding_body, partner_queues, progress, wait_until
from shared.amqp.nodes import first_node
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY
from shared.contract.validation import Valid, example_bsn, validate_inbound
from shared.envelopes import Command
from shared.pseudonym import Pseudonymizer

NEW_YOUTH_SEED = 20_000_000
SEED_CHUNK = 100_000
# Seeded youths get explicit ids far above what the sequence hands the matcher.
SEEDED_ID_BASE = 1_000_000_000


def _birth_date(j: int) -> date:
    return BIRTH_BASE + timedelta(days=(j * 7) % 5000)


async def seed(conn: asyncpg.Connection[Any], start: int, stop: int) -> None:
    """Stored youths j in [start, stop), each with one active melding of partner
    REPORTER_IDS[j % 4] (youth id SEEDED_ID_BASE + j, melding_ref SEED-j)."""
    pseudonyms = Pseudonymizer(PSEUDONYM_KEY)
    now = datetime.now(UTC)
    expires = (now + timedelta(days=700)).date()
    for lo in range(start, stop, SEED_CHUNK):
        hi = min(stop, lo + SEED_CHUNK)
        youths = [
            (
                SEEDED_ID_BASE + j,
                pseudonyms.youth_by_bsn(example_bsn(j)),
                True,
                _birth_date(j),
                MUNICIPALITIES[j % len(MUNICIPALITIES)][0],
            )
            for j in range(lo, hi)
        ]
        await conn.copy_records_to_table(
            "youth",
            records=youths,
            columns=["id", "identity_hash", "has_bsn", "birth_date", "municipality"],
        )
        meldingen = [
            (
                SEEDED_ID_BASE + j,
                REPORTER_IDS[j % len(REPORTER_IDS)],
                f"SEED-{j}",
                "active",
                now,
                f"Medewerker {j % 97}",
                f"medewerker.{j % 97}@partner.example",
                "+31201234567",
                expires,
                ["youth", "parents"],
            )
            for j in range(lo, hi)
        ]
        await conn.copy_records_to_table(
            "melding",
            records=meldingen,
            columns=[
                "youth_id",
                "partner_id",
                "melding_ref",
                "state",
                "reported_at",
                "reporter_name",
                "reporter_email",
                "reporter_phone",
                "expires_on",
                "inform_targets",
            ],
        )
    await conn.execute("VACUUM ANALYZE youth")
    await conn.execute("VACUUM ANALYZE melding")


def commands(
    count: int, stored: range, *, tag: str, new_base: int, rng: random.Random
) -> list[Command]:
    """Half on stored youths (picked at random from `stored`), half on new ones."""
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")
    targets = rng.sample(stored, min(len(stored), count // 2))
    out = []
    for i in range(count):
        if i % 2 == 0 and i // 2 < len(targets):
            j = targets[i // 2]
            bsn, partner = example_bsn(j), REPORTER_IDS[(j + 1) % len(REPORTER_IDS)]
            birth, municipality = _birth_date(j), MUNICIPALITIES[j % len(MUNICIPALITIES)][0]
        else:
            k = new_base + i
            bsn, partner = example_bsn(k), REPORTER_IDS[i % len(REPORTER_IDS)]
            birth, municipality = _birth_date(i), MUNICIPALITIES[i % len(MUNICIPALITIES)][0]
        body = melding_body(f"{tag}-{i}", bsn, birth, municipality, f"Medewerker {i % 97}", stamp)
        outcome = validate_inbound(
            "melding.register",
            json.dumps(body).encode(),
            roles=frozenset({"reporter"}),
            municipalities={code for code, _ in MUNICIPALITIES},
            now=now,
        )
        assert isinstance(outcome, Valid), outcome
        out.append(
            Command(
                partner_id=partner,
                message_id=f"{tag}-c{i}",
                seen_before=False,
                message=outcome.message,
            )
        )
    return out


async def _queue_commands(env: BenchEnv, batch: list[Command], user_id: str) -> None:
    connection = await aio_pika.connect(
        first_node(env.amqp_url), client_properties={"connection_name": "bench-commands"}
    )
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(INTERNAL_EXCHANGE, ensure=False)
        items = iter(batch)

        async def worker() -> None:
            for command in items:
                await exchange.publish(
                    aio_pika.Message(
                        command.model_dump_json().encode(),
                        message_id=command.message_id,
                        correlation_id=command.message_id,
                        type=command.message.type,
                        user_id=user_id,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    MATCHER_KEY,
                    mandatory=True,
                )

        await asyncio.gather(*(worker() for _ in range(256)))
    finally:
        await connection.close()


async def _measure(
    ctx: Context, env: BenchEnv, stored: int, count: int, *, targets: range, new_base: int
) -> dict[str, Any]:
    batch = commands(count, targets, tag=f"m{stored}", new_base=new_base, rng=random.Random(stored))
    await _queue_commands(env, batch, ctx.base.service_broker_user)
    sink = Sink()
    replicas = replica_counts(ctx.replicas, ("matcher",))
    services = ServiceSet(ctx.env_for(env), ctx.log_dir / f"matcher-{stored}")
    try:
        await sink.start(env.amqp_url, partner_queues(env))
        rate = Rate(lambda: sink.receipts)
        line = lambda _t: f"stored {stored} receipts {sink.receipts}/{count} ({rate():.0f}/s)"  # noqa: E731
        async with progress("matcher", line):
            start = time.monotonic()
            await services.start(replicas)
            meter = CpuMeter(services)
            meter.start()
            counted_from = sink.receipts
            await wait_until(
                lambda: sink.receipts >= count,
                lambda: sink.receipts,
                stall_seconds=ctx.stall_seconds,
                check=services.check_alive,
            )
            cpu = meter.stop()
    finally:
        await sink.close()
        await services.stop()
    handled = max(1, count - counted_from)
    return {
        "stored_meldingen": stored,
        "commands": count,
        "replicas": replicas,
        "receipted": sink.receipts,
        "receipt_statuses": dict(sink.statuses),
        "seconds_incl_startup": round(max(sink.receipt_times) - start, 2),
        "commands_per_s": round(steady_rate(sink.receipt_times), 1),
        "cpu": cpu,
        "cpu_ms_per_command": {
            "matcher": round(1000 * sum(cpu["cpu_seconds"].values()) / handled, 3),
            **{k: round(1000 * v / handled, 3) for k, v in cpu["backend_cpu_seconds"].items()},
        },
    }


async def matcher_scaling(ctx: Context, *, sizes: tuple[int, int], count: int) -> dict[str, Any]:
    small, large = sizes
    async with ctx.environment() as env:
        conn = await asyncpg.connect(env.database_url)
        try:
            started = time.monotonic()
            await seed(conn, 0, small)
            seeded_small = time.monotonic() - started
            # Stored youths the first measurement registers on are not used again.
            at_small = await _measure(
                ctx, env, small, count, targets=range(small), new_base=NEW_YOUTH_SEED
            )
            started = time.monotonic()
            print(f"[matcher] seeding up to {large} stored meldingen", file=sys.stderr, flush=True)
            await seed(conn, small, large)
            seeded_large = time.monotonic() - started
            at_large = await _measure(
                ctx,
                env,
                large,
                count,
                targets=range(small, large),
                new_base=NEW_YOUTH_SEED + 10_000_000,
            )
        finally:
            await conn.close()
    return {
        "small": {**at_small, "seed_seconds": round(seeded_small, 1)},
        "large": {**at_large, "seed_seconds": round(seeded_large, 1)},
        "ratio": round(at_large["commands_per_s"] / at_small["commands_per_s"], 3),
        # CPU (matcher + database) per command, small over large: the same comparison
        # as `ratio`, but hardly moved by other work on the machine.
        "cpu_ratio": round(_cpu_per_command(at_small) / _cpu_per_command(at_large), 3),
    }


def _cpu_per_command(figures: dict[str, Any]) -> float:
    per = figures["cpu_ms_per_command"]
    return float(per["matcher"] + per.get("postgresql", 0.0))
