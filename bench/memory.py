"""Memory of every service with a backlog: the meldingen are queued while no service
runs, then the services start and drain it while /proc/<pid>/status is sampled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from bench.context import Context, Rate, replica_counts
from bench.procs import Memory, ServiceSet
from bench.traffic import (
    Partners,
    Sink,
    SmtpSink,
    matches_in,
    partner_queues,
    plan,
    progress,
    wait_until,
)
from testing.processes import SERVICES

SAMPLE_SECONDS = 0.5


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


async def backlog_memory(ctx: Context, backlog: int) -> dict[str, Any]:
    meldingen = plan(backlog, seed_base=4_000_000, tag=f"mem{backlog}")
    matches = matches_in(meldingen)
    want_notices, want_emails = 2 * matches, 3 * matches
    samples: list[tuple[float, dict[str, Memory]]] = []
    async with ctx.environment() as env:
        smtp = SmtpSink()
        await smtp.start()
        services = ServiceSet(ctx.env_for(env, VI_SMTP_URL=smtp.url), ctx.log_dir / "memory")
        sink = Sink()
        partners = Partners(env)

        async def sample_forever() -> None:
            while True:
                done = sink.receipts / backlog
                samples.append((done, services.memory()))
                await asyncio.sleep(SAMPLE_SECONDS)

        sampler: asyncio.Task[None] | None = None
        try:
            await sink.start(env.amqp_url, partner_queues(env))
            await partners.start()
            async with progress(
                f"memory {backlog}", lambda _t: f"queued {partners.sent}/{backlog}"
            ):
                await partners.publish_all(meldingen)
            await partners.close()
            rate = Rate(lambda: sink.receipts)

            def line(_t: float) -> str:
                mem = services.memory()
                rss = " ".join(f"{k}={_mb(m.rss_kb)}MB" for k, m in sorted(mem.items()))
                return f"receipts {sink.receipts}/{backlog} ({rate():.0f}/s) rss {rss}"

            async with progress(f"memory {backlog}", line):
                start = time.monotonic()
                await services.start(replica_counts(ctx.replicas, SERVICES))
                sampler = asyncio.create_task(sample_forever())
                await wait_until(
                    lambda: (
                        sink.receipts >= backlog
                        and sink.notice_count >= want_notices
                        and smtp.count >= want_emails
                    ),
                    lambda: sink.receipts + sink.notice_count + smtp.count,
                    stall_seconds=ctx.stall_seconds,
                    check=services.check_alive,
                )
                drained = time.monotonic() - start
            samples.append((1.0, services.memory()))
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            await partners.close()
            await sink.close()
            await services.stop()
            await smtp.close()
    return {
        "backlog": backlog,
        "receipted": sink.receipts,
        "duplicate_deliveries": sink.duplicates + smtp.duplicates,
        "drain_seconds": round(drained, 1),
        "services": _per_service(samples),
    }


def _per_service(samples: list[tuple[float, dict[str, Memory]]]) -> dict[str, Any]:
    """Per service (the largest replica): peak RSS (VmHWM), and RSS at a quarter, half
    and all of the backlog handled (flat means they hardly differ)."""
    out: dict[str, Any] = {}
    labels = sorted({label for _, mem in samples for label in mem})
    services = sorted({label.rsplit("-", 1)[0] for label in labels})
    for service in services:

        def rss_at(fraction: float, service: str = service) -> float:
            eligible = [mem for done, mem in samples if done >= fraction]
            if not eligible:
                return 0.0
            return _mb(
                max(
                    (m.rss_kb for k, m in eligible[0].items() if k.startswith(service + "-")),
                    default=0,
                )
            )

        peak = max(
            (m.hwm_kb for _, mem in samples for k, m in mem.items() if k.startswith(service + "-")),
            default=0,
        )
        out[service] = {
            "peak_rss_mb": _mb(peak),
            "rss_at_25pct_mb": rss_at(0.25),
            "rss_at_50pct_mb": rss_at(0.5),
            "rss_at_end_mb": rss_at(1.0),
        }
    return out


def flat(small: dict[str, Any], large: dict[str, Any], *, tolerance_mb: float = 10.0) -> bool:
    """Peak RSS with the large backlog within `tolerance_mb` of the small one's."""
    return all(
        large["services"][name]["peak_rss_mb"] - small["services"][name]["peak_rss_mb"]
        <= tolerance_mb
        for name in large["services"]
        if name in small["services"]
    )
