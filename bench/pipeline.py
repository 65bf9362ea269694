"""End-to-end throughput of the pipeline, and of the bare relay over the same hops."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.context import Context, Rate, replica_counts
from bench.family import REGISTER_ID, RegisterAnswering, family_region
from bench.procs import CpuMeter, ServiceSet
from bench.relay import SIZES
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
from shared.amqp.topology import EMAIL_QUEUE, partner_queue
from testing.processes import SERVICES

RELAY_STAGES = ("ingest", "matcher", "notifier")


@dataclass(frozen=True)
class Fanout:
    """What one match causes: notify events, and per event notices and e-mails."""

    events_per_match: int = 1
    notices_per_event: int = 2
    emails_per_event: int = 3

    @classmethod
    def observed(cls, matches: int, events: int, notices: int, emails: int) -> Fanout:
        if matches == 0 or events == 0:
            return cls()
        return cls(round(events / matches), round(notices / events), round(emails / events))

    def as_env(self) -> str:
        return f"{self.events_per_match},{self.notices_per_event},{self.emails_per_event}"


def hops(meldingen: int, events: int, notices: int, emails: int) -> int:
    """Broker hops (a publish and a consume): partner -> vi.ingest, ingest -> vi.matcher,
    matcher -> partner (receipt) per melding; matcher -> vi.notifier per event; notifier
    -> partner per notice; notifier -> vi.email per e-mail job."""
    return 3 * meldingen + events + notices + emails


async def end_to_end(ctx: Context, count: int, *, family: bool = False) -> dict[str, Any]:
    """The whole pipeline. With `family`, the region's family match is on and a
    register answers every youth's `person.lookup` (bench/family.py)."""
    tag = "e2e-family" if family else "e2e"
    meldingen = plan(count, seed_base=1_000_000, tag=tag)
    matches = matches_in(meldingen)
    youths = count - matches  # every youth has a first melding; a match adds a second
    fan = Fanout()
    async with ctx.environment(family_region(ctx.region) if family else None) as env:
        smtp = SmtpSink()
        await smtp.start()
        services = ServiceSet(ctx.env_for(env, VI_SMTP_URL=smtp.url), ctx.log_dir / tag)
        sink = Sink()
        partners = Partners(env)
        register = RegisterAnswering(env) if family else None
        try:
            await services.start(replica_counts(ctx.replicas, SERVICES))
            queues = partner_queues(env)
            if register is not None:
                queues.remove(partner_queue(REGISTER_ID))
                await register.start()
            await sink.start(env.amqp_url, queues)
            await partners.start()
            want_notices = matches * fan.events_per_match * fan.notices_per_event
            want_emails = matches * fan.events_per_match * fan.emails_per_event

            def done() -> bool:
                return (
                    sink.receipts >= count
                    and sink.notice_count >= want_notices
                    and smtp.count >= want_emails
                    and (register is None or register.facts_receipted >= youths)
                )

            rate = Rate(lambda: sink.receipts)
            line = lambda _t: (  # noqa: E731
                f"sent {partners.sent}/{count} receipts {sink.receipts} ({rate():.0f}/s) "
                f"notices {sink.notice_count}/{want_notices} e-mails {smtp.count}/{want_emails}"
                + (f" facts {register.facts_receipted}/{youths}" if register is not None else "")
            )
            meter = CpuMeter(services)
            async with progress(tag, line):
                meter.start()
                start = time.monotonic()
                await partners.publish_all(meldingen)
                published = time.monotonic()
                await wait_until(
                    done,
                    lambda: (
                        sink.receipts
                        + sink.notice_count
                        + smtp.count
                        + (register.facts_receipted if register is not None else 0)
                    ),
                    stall_seconds=ctx.stall_seconds,
                    check=services.check_alive,
                )
                cpu = meter.stop()
            finished = max(sink.last_at, smtp.last_at)
            receipts_done = max(sink.receipt_times)
            if register is not None:
                finished = max(finished, register.last_at)
        finally:
            await partners.close()
            await sink.close()
            if register is not None:
                await register.close()
            await services.stop()
            await smtp.close()
    seconds = finished - start
    events = len(sink.events)
    total_hops = hops(count, events, sink.notice_count, smtp.count)
    return {
        "meldingen": count,
        "matches": matches,
        "replicas": replica_counts(ctx.replicas, SERVICES),
        "sent": partners.sent,
        "receipted": sink.receipts,
        "receipt_statuses": dict(sink.statuses),
        "notify_events": events,
        "notices": sink.notice_count,
        "emails": smtp.count,
        "duplicate_deliveries": sink.duplicates + smtp.duplicates,
        "hops": total_hops,
        "publish_seconds": round(published - start, 2),
        "seconds": round(seconds, 2),
        "meldingen_per_s": round(count / seconds, 1),
        "receipts_per_s": round(count / (receipts_done - start), 1),
        "hops_per_s": round(total_hops / seconds, 1),
        "fanout": Fanout.observed(matches, events, sink.notice_count, smtp.count).as_env(),
        "cpu": cpu,
        "cpu_ms_per_melding": _per_melding(cpu, count),
        **({"family": register.figures(youths)} if register is not None else {}),
    }


def _per_melding(cpu: dict[str, Any], count: int) -> dict[str, float]:
    out = {k: round(1000 * v / count, 3) for k, v in cpu["cpu_seconds"].items()}
    out["bench"] = round(1000 * cpu["bench_process_cpu_seconds"] / count, 3)
    out["machine"] = round(1000 * cpu["machine_cpu_seconds"] / count, 3)
    return out


async def bare_relay(ctx: Context, count: int, fan: Fanout) -> dict[str, Any]:
    """The same meldingen through the same queues, relayed by bench.relay stages."""
    meldingen: list[Melding] = plan(count, seed_base=1_000_000, tag="relay")
    matches = matches_in(meldingen)
    events = matches * fan.events_per_match
    want_notices = events * fan.notices_per_event
    want_emails = events * fan.emails_per_event
    stages = replica_counts(ctx.replicas, RELAY_STAGES)
    async with ctx.environment() as env:
        relays = ServiceSet(
            ctx.env_for(env, BENCH_FANOUT=fan.as_env(), BENCH_LOGIN_PREFIX=ctx.logins.prefix),
            ctx.log_dir / "relay",
        )
        sink = Sink()
        partners = Partners(env)
        try:
            await relays.start(
                stages, module="bench.relay", args=("{name}",), ready_line="consuming"
            )
            await sink.start(env.amqp_url, partner_queues(env), email_queue=EMAIL_QUEUE)
            await partners.start()

            def done() -> bool:
                return (
                    sink.receipts >= count
                    and sink.notice_count >= want_notices
                    and sink.email_jobs >= want_emails
                )

            rate = Rate(lambda: sink.receipts)
            line = lambda _t: (  # noqa: E731
                f"sent {partners.sent}/{count} receipts {sink.receipts} ({rate():.0f}/s) "
                f"notices {sink.notice_count}/{want_notices} "
                f"e-mail jobs {sink.email_jobs}/{want_emails}"
            )
            meter = CpuMeter(relays)
            async with progress("relay", line):
                meter.start()
                start = time.monotonic()
                await partners.publish_all(meldingen)
                await wait_until(
                    done,
                    lambda: sink.receipts + sink.notice_count + sink.email_jobs,
                    stall_seconds=ctx.stall_seconds,
                    check=relays.check_alive,
                )
                cpu = meter.stop()
            finished = sink.last_at
        finally:
            await partners.close()
            await sink.close()
            await relays.stop()
    seconds = finished - start
    total_hops = hops(count, events, sink.notice_count, sink.email_jobs)
    return {
        "meldingen": count,
        "replicas": stages,
        "queues": ["vi.ingest", "vi.matcher", "vi.notifier", "vi.email", "partner.<id>"],
        "fanout": fan.as_env(),
        "body_bytes": SIZES,
        "sent": partners.sent,
        "receipted": sink.receipts,
        "notices": sink.notice_count,
        "email_jobs": sink.email_jobs,
        "hops": total_hops,
        "seconds": round(seconds, 2),
        "meldingen_per_s": round(count / seconds, 1),
        "hops_per_s": round(total_hops / seconds, 1),
        "cpu": cpu,
        "cpu_ms_per_melding": _per_melding(cpu, count),
    }
