"""Latency at a fixed offered load: publish -> receipt, and publish of a youth's second
melding -> the match notice to its sender."""

from __future__ import annotations

from typing import Any

from bench.context import Context, Rate, replica_counts, summary_ms
from bench.pipeline import PIPELINE_SERVICES
from bench.procs import ServiceSet
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


async def latency(
    ctx: Context, *, per_second: float, seconds: float, warmup_seconds: float
) -> dict[str, Any]:
    count = int(per_second * seconds)
    warmup = int(per_second * warmup_seconds)
    # The second melding on a youth follows about a second after the first.
    meldingen = plan(count, seed_base=3_000_000, tag="lat", lag=max(1, int(per_second)))
    matches = matches_in(meldingen)
    async with ctx.environment() as env:
        smtp = SmtpSink()
        await smtp.start()
        services = ServiceSet(ctx.env_for(env, VI_SMTP_URL=smtp.url), ctx.log_dir / "latency")
        sink = Sink(track=True)
        partners = Partners(env)
        try:
            await services.start(replica_counts(ctx.replicas, PIPELINE_SERVICES))
            await sink.start(env.amqp_url, partner_queues(env))
            await partners.start()
            rate = Rate(lambda: sink.receipts)
            line = lambda _t: (  # noqa: E731
                f"offered {per_second:.0f}/s sent {partners.sent}/{count} "
                f"receipts {sink.receipts} ({rate():.0f}/s) "
                f"match notices {len(sink.match_notice_at)}/{matches}"
            )
            async with progress("latency", line):
                await partners.publish_at_rate(meldingen, per_second)
                await wait_until(
                    lambda: sink.receipts >= count and len(sink.match_notice_at) >= matches,
                    lambda: sink.receipts + len(sink.match_notice_at),
                    stall_seconds=ctx.stall_seconds,
                    check=services.check_alive,
                )
        finally:
            await partners.close()
            await sink.close()
            await services.stop()
            await smtp.close()
    measured = meldingen[warmup:]
    to_receipt = [
        sink.receipt_at[m.message_id] - partners.sent_at[m.message_id]
        for m in measured
        if m.message_id in sink.receipt_at
    ]
    to_notice = [
        sink.match_notice_at[m.melding_ref] - partners.sent_at[m.message_id]
        for m in measured
        if m.completes_match and m.melding_ref in sink.match_notice_at
    ]
    return {
        "offered_per_s": per_second,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "sent": partners.sent,
        "receipted": sink.receipts,
        "publish_to_receipt": summary_ms(to_receipt),
        "publish_to_match_notice": summary_ms(to_notice),
    }
