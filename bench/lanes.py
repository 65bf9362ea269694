"""Lanes under load: one partner sends a big load as fast as the broker confirms while
another registers live at a fixed rate, each live melding on a youth that a third
partner registered earlier (so each one yields a match notice).

The load goes in three ways, each in a fresh region:
* `onboarding`: with routing key `onboard.melding.register` (contract §10);
* `flood`: as live traffic, with the region's default live rate per partner (fair
  shares: ingest diverts the flooding partner's excess to the bulk lane);
* `flood-unlimited`: as live traffic with no live rate, which is how every message
  travelled before lanes: the contrast.
For each: the live partner's publish -> receipt and publish -> match notice, and the
load's rate (its meldingen over the time to its last receipt).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.context import Context, replica_counts, summary_ms
from bench.env import MUNICIPALITIES, REPORTER_IDS, UNLIMITED_LIVE
from bench.procs import ServiceSet
from bench.traffic import (
    Melding,
    Partners,
    Sink,
    SmtpSink,
    melding_body,
    partner_queues,
    progress,
    wait_until,
)
from shared.amqp.topology import partner_queue
from shared.contract.inbound import ONBOARDING_ROUTING_KEY
from shared.contract.validation import example_bsn
from shared.region.model import RegionConfig, RegionRules
from testing.processes import REPO_ROOT, SERVICES

LOADER, LIVE, EARLIER = REPORTER_IDS[0], REPORTER_IDS[1], REPORTER_IDS[2]
LIVE_KEY = "melding.register"
LIVE_QUEUE, LOADER_QUEUE = partner_queue(LIVE), partner_queue(LOADER)

# Variant -> (routing key of the load, whether partners are held to the default rate).
VARIANTS: dict[str, tuple[str, bool]] = {
    "onboarding": (ONBOARDING_ROUTING_KEY, True),
    "flood": (LIVE_KEY, True),
    "flood-unlimited": (LIVE_KEY, False),
}


@dataclass(frozen=True)
class LaneLoad:
    """The sizes of one lanes measurement."""

    meldingen: int
    live_rate: float
    # Live meldingen available (each on a youth seeded beforehand); the live partner
    # stops when the load is answered or these run out.
    live_max: int


def _melding(partner: str, tag: str, k: int, seed: int, now: str) -> Melding:
    ref = f"{tag}-{k}"
    body = melding_body(
        ref,
        example_bsn(seed),
        date(2009, 1, 1) + timedelta(days=(k * 11) % 5000),
        MUNICIPALITIES[k % len(MUNICIPALITIES)][0],
        f"Medewerker {k % 89}",
        now,
    )
    return Melding(partner, f"{tag}-m{k}", ref, json.dumps(body).encode(), partner == LIVE)


def load_meldingen(count: int, tag: str, now: str) -> list[Melding]:
    """The load: `count` meldingen of one partner on distinct youths."""
    return [_melding(LOADER, f"{tag}L", k, 5_000_000 + k, now) for k in range(count)]


def _live_pairs(size: LaneLoad, tag: str) -> tuple[list[Melding], list[Melding]]:
    """The earlier and the live meldingen: pairs on the same youths, from two other
    partners than the loader."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    earlier = [_melding(EARLIER, f"{tag}E", k, 9_000_000 + k, now) for k in range(size.live_max)]
    live = [_melding(LIVE, f"{tag}V", k, 9_000_000 + k, now) for k in range(size.live_max)]
    return earlier, live


def _region(ctx: Context, limited: bool) -> RegionConfig:
    """The run's region, with the default live rate per partner or none."""
    defaults = RegionRules(name="defaults")
    rates = (
        {"live_rate": defaults.live_rate, "live_burst": defaults.live_burst}
        if limited
        else UNLIMITED_LIVE
    )
    return ctx.region.model_copy(update={"region": ctx.region.region.model_copy(update=rates)})


async def lane_load(ctx: Context, variant: str, size: LaneLoad) -> dict[str, Any]:
    routing_key, limited = VARIANTS[variant]
    region = _region(ctx, limited)
    tag = variant[:2]
    earlier, live = _live_pairs(size, tag)
    async with ctx.environment(region) as env:
        smtp = SmtpSink()
        await smtp.start()
        services = ServiceSet(ctx.env_for(env, VI_SMTP_URL=smtp.url), ctx.log_dir / variant)
        # The live partner's mailbox on a connection of its own; the loader's is read
        # by the loader process (bench/loader.py).
        sink, live_sink = Sink(track=True), Sink(track=True)
        others = [q for q in partner_queues(env) if q not in (LIVE_QUEUE, LOADER_QUEUE)]
        partners = Partners(env)
        sent_live: list[Melding] = []
        loader: asyncio.subprocess.Process | None = None
        try:
            await services.start(replica_counts(ctx.replicas, SERVICES))
            await sink.start(env.amqp_url, others)
            await live_sink.start(env.amqp_url, [LIVE_QUEUE])
            await partners.start([LIVE, EARLIER])
            # The youths the live partner will meet, registered first (not measured).
            await partners.publish_all(earlier, routing_key=ONBOARDING_ROUTING_KEY)
            await wait_until(
                lambda: sink.receipts >= len(earlier),
                lambda: sink.receipts,
                stall_seconds=ctx.stall_seconds,
                check=services.check_alive,
            )

            def loading() -> bool:
                return loader is not None and loader.returncode is None

            def live_done() -> bool:
                return all(m.message_id in live_sink.receipt_at for m in sent_live) and all(
                    m.melding_ref in live_sink.match_notice_at for m in sent_live
                )

            line = lambda _t: (  # noqa: E731
                f"{variant}: loader {'busy' if loading() else 'done'} "
                f"({size.meldingen} meldingen); live sent {len(sent_live)} "
                f"receipts {live_sink.receipts} notices {len(live_sink.match_notice_at)}"
            )
            async with progress(variant, line):
                loader = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bench.loader",
                    env.partner_url(LOADER),
                    env.amqp_url,
                    LOADER_QUEUE,
                    region.partners_by_id[LOADER].own_broker_user,
                    tag,
                    str(size.meldingen),
                    routing_key,
                    stdout=asyncio.subprocess.PIPE,
                    cwd=REPO_ROOT,
                )
                await _live_beside(partners, live, size.live_rate, sent_live, lambda: not loading())
                await wait_until(
                    lambda: not loading() and live_done(),
                    lambda: live_sink.receipts + live_sink.notice_count + int(loading()),
                    # The loader shows no progress while it works: allow for its load.
                    stall_seconds=ctx.stall_seconds + size.meldingen / 50,
                    check=services.check_alive,
                )
                assert loader.stdout is not None
                loaded = json.loads(await loader.stdout.read())
        finally:
            if loader is not None and loader.returncode is None:
                loader.kill()
                await loader.wait()
            await partners.close()
            await sink.close()
            await live_sink.close()
            await services.stop()
            await smtp.close()
    seconds = loaded["last_receipt"] - loaded["started"]
    return {
        "variant": variant,
        "routing_key": routing_key,
        "live_rate_per_partner": region.region.live_rate if limited else None,
        "live_burst_per_partner": region.region.live_burst if limited else None,
        "load_meldingen": size.meldingen,
        "load_statuses": loaded["statuses"],
        "load_publish_seconds": round(loaded["published"] - loaded["started"], 2),
        "load_seconds": round(seconds, 2),
        "load_meldingen_per_s": round(size.meldingen / seconds, 1),
        "seeded_statuses": dict(sink.statuses),
        "live_statuses": dict(live_sink.statuses),
        "live_offered_per_s": size.live_rate,
        "live_sent": len(sent_live),
        "live_publish_to_receipt": summary_ms(
            [live_sink.receipt_at[m.message_id] - partners.sent_at[m.message_id] for m in sent_live]
        ),
        "live_publish_to_match_notice": summary_ms(
            [
                live_sink.match_notice_at[m.melding_ref] - partners.sent_at[m.message_id]
                for m in sent_live
            ]
        ),
    }


async def _live_beside(
    partners: Partners,
    live: list[Melding],
    per_second: float,
    sent: list[Melding],
    load_done: Callable[[], bool],
) -> None:
    """One live melding every 1/per_second s until the load is answered (or the
    seeded youths run out), whatever the confirms do."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    tasks: list[asyncio.Task[None]] = []
    for i, melding in enumerate(live):
        if load_done():
            break
        delay = began + i / per_second - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent.append(melding)
        tasks.append(asyncio.create_task(partners.publish(melding, track=True)))
    await asyncio.gather(*tasks)


def ratios(parts: dict[str, Any]) -> dict[str, float | None]:
    """The load's rate against the end-to-end rate of the same run."""
    e2e = parts.get("e2e")
    out: dict[str, float | None] = {}
    for variant in VARIANTS:
        part = parts.get(variant)
        out[variant] = (
            round(part["load_meldingen_per_s"] / e2e["meldingen_per_s"], 3)
            if part and e2e
            else None
        )
    return out
