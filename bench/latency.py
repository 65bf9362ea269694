"""Latency at a fixed offered load: publish -> receipt, and publish of a youth's second
melding -> the match notice to its sender. The bare relay is measured the same way,
to show what the broker hops alone cost."""

from __future__ import annotations

from typing import Any

from bench.context import Context, Rate, replica_counts, summary_ms
from bench.pipeline import RELAY_STAGES, Fanout
from bench.procs import ServiceSet
from bench.traffic import (
    Melding,
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


async def _measure(
    ctx: Context, meldingen: list[Melding], per_second: float, *, relay: bool
) -> tuple[Sink, Partners]:
    count, matches = len(meldingen), matches_in(meldingen)
    name = "latency-relay" if relay else "latency"
    async with ctx.environment() as env:
        smtp = SmtpSink()
        await smtp.start()
        if relay:
            services = ServiceSet(
                ctx.env_for(
                    env, BENCH_FANOUT=Fanout().as_env(), BENCH_LOGIN_PREFIX=ctx.logins.prefix
                ),
                ctx.log_dir / name,
            )
        else:
            services = ServiceSet(ctx.env_for(env, VI_SMTP_URL=smtp.url), ctx.log_dir / name)
        sink = Sink(track=True)
        partners = Partners(env)
        try:
            if relay:
                await services.start(
                    replica_counts(ctx.replicas, RELAY_STAGES),
                    module="bench.relay",
                    args=("{name}",),
                    ready_line="consuming",
                )
            else:
                await services.start(replica_counts(ctx.replicas, SERVICES))
            await sink.start(env.amqp_url, partner_queues(env))
            await partners.start()
            rate = Rate(lambda: sink.receipts)
            line = lambda _t: (  # noqa: E731
                f"offered {per_second:.0f}/s sent {partners.sent}/{count} "
                f"receipts {sink.receipts} ({rate():.0f}/s) "
                f"match notices {sink.notices['match.notice']}/{2 * matches}"
            )
            async with progress(name, line):
                await partners.publish_at_rate(meldingen, per_second)
                await wait_until(
                    lambda: sink.receipts >= count and sink.notices["match.notice"] >= 2 * matches,
                    lambda: sink.receipts + sink.notice_count,
                    stall_seconds=ctx.stall_seconds,
                    check=services.check_alive,
                )
        finally:
            await partners.close()
            await sink.close()
            await services.stop()
            await smtp.close()
    return sink, partners


def _figures(
    meldingen: list[Melding], sink: Sink, partners: Partners, *, relay: bool
) -> dict[str, Any]:
    to_receipt = [
        sink.receipt_at[m.message_id] - partners.sent_at[m.message_id]
        for m in meldingen
        if m.message_id in sink.receipt_at
    ]
    # The pipeline's notice names the newcomer's melding_ref; the relay's carries the
    # melding's message_id as correlation id (see bench.relay).
    notice_at = sink.match_notice_at if not relay else sink.notice_by_correlation
    to_notice = [
        notice_at[key] - partners.sent_at[m.message_id]
        for m in meldingen
        if m.completes_match and (key := m.message_id if relay else m.melding_ref) in notice_at
    ]
    return {
        "sent": partners.sent,
        "receipted": sink.receipts,
        "publish_to_receipt": summary_ms(to_receipt),
        "publish_to_match_notice": summary_ms(to_notice),
    }


async def latency(
    ctx: Context, *, per_second: float, seconds: float, warmup_seconds: float
) -> dict[str, Any]:
    count = int(per_second * seconds)
    warmup = int(per_second * warmup_seconds)
    # The second melding on a youth follows about a second after the first.
    lag = max(1, int(per_second))
    result: dict[str, Any] = {
        "offered_per_s": per_second,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
    }
    meldingen = plan(count, seed_base=3_000_000, tag="lat", lag=lag)
    sink, partners = await _measure(ctx, meldingen, per_second, relay=False)
    result.update(_figures(meldingen[warmup:], sink, partners, relay=False))
    meldingen = plan(count, seed_base=3_000_000, tag="latrelay", lag=lag)
    sink, partners = await _measure(ctx, meldingen, per_second, relay=True)
    result["bare_relay"] = _figures(meldingen[warmup:], sink, partners, relay=True)
    return result
