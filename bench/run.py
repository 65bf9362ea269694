"""The benchmark command: `python -m bench [options]` (or `scripts/bench.sh`).

Runs the parts in turn, each in a region of its own (fresh vhost and database, removed
afterwards), prints a progress line per second and a summary table, and writes every
figure to bench/results/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.env import Logins
from bench.lanes import VARIANTS, LaneLoad, lane_load, ratios
from bench.latency import latency
from bench.matcher import matcher_scaling
from bench.memory import backlog_memory, flat
from bench.pipeline import Fanout, bare_relay, end_to_end
from shared.settings import Settings
from testing.processes import REPO_ROOT

PARTS = (
    "e2e",
    "e2e-family",
    "baseline",
    "baseline-receipts",
    "latency",
    "matcher",
    "memory",
    *VARIANTS,
)
# One of each on the reference machine (2 cores): fewer processes, bigger batches.
DEFAULT_REPLICAS = {"ingest": 1, "matcher": 1, "notifier": 1, "retention": 1}
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# Targets on the reference machine (2 cores, broker and database on the same host).
TARGET_RATIO = 1.0
TARGET_MELDINGEN_PER_S = 1000.0
TARGET_P99_MS = 200.0
TARGET_MATCHER_RATIO = 0.8
TARGET_RSS_MB = 200.0
# Lanes (contract §10, fair shares): the live partner beside a big load.
TARGET_LIVE_RECEIPT_P99_MS = 1000.0
TARGET_LIVE_NOTICE_P99_MS = 2000.0
TARGET_ONBOARDING_RATIO = 0.9


@dataclass
class Options:
    meldingen: int = 100_000
    replicas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLICAS))
    skip: set[str] = field(default_factory=set)
    quick: bool = False
    latency_rate: float = 100.0
    latency_seconds: float = 30.0
    latency_warmup: float = 3.0
    matcher_stored: tuple[int, int] = (10_000, 1_000_000)
    matcher_commands: int = 20_000
    backlogs: tuple[int, int] = (50_000, 200_000)
    lanes_meldingen: int = 100_000
    lanes_live_rate: float = 10.0
    lanes_live_max: int = 3_000
    service_env: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 60.0
    output: Path | None = RESULTS_DIR
    # The services' logs (default: var/bench/<timestamp>/).
    log_dir: Path | None = None

    @classmethod
    def quick_mode(cls, **changes: Any) -> Options:
        """Small sizes for a smoke run (well under two minutes)."""
        base = cls(
            meldingen=2_000,
            quick=True,
            latency_seconds=6.0,
            latency_warmup=1.0,
            matcher_stored=(1_000, 10_000),
            matcher_commands=1_000,
            backlogs=(500, 2_000),
            lanes_meldingen=2_000,
            lanes_live_max=300,
            stall_seconds=30.0,
        )
        for key, value in changes.items():
            setattr(base, key, value)
        return base


def _pair(text: str) -> tuple[int, int]:
    a, b = (int(x) for x in text.split(","))
    return a, b


def parse_replicas(text: str) -> dict[str, int]:
    counts = dict(DEFAULT_REPLICAS)
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, count = item.partition("=")
        if name not in DEFAULT_REPLICAS or not count.isdigit():
            raise argparse.ArgumentTypeError(f"bad replica count {item!r} (e.g. matcher=2)")
        counts[name] = int(count)
    return counts


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the Verwijsindex: throughput against a bare relay, latency,"
        " matcher scaling with the index size, and memory with a backlog.",
    )
    p.add_argument("--meldingen", type=int, help="meldingen for the throughput run (100000)")
    p.add_argument(
        "--replicas",
        type=parse_replicas,
        help="replicas per service, e.g. ingest=2,matcher=2 (default: one of each)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PART",
        help=f"leave out a part (repeat or comma-separate): {', '.join(PARTS)}",
    )
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run (<2 min)")
    p.add_argument("--latency-rate", type=float, help="offered load in meldingen/s (100)")
    p.add_argument("--latency-seconds", type=float, help="how long the load is offered (30)")
    p.add_argument(
        "--matcher-stored", type=_pair, help="stored meldingen, small,large (10000,1000000)"
    )
    p.add_argument("--matcher-commands", type=int, help="commands per matcher run (20000)")
    p.add_argument("--backlogs", type=_pair, help="backlog sizes, small,large (50000,200000)")
    p.add_argument(
        "--lanes-meldingen",
        type=int,
        help="the big load beside the live partner in onboarding/flood parts (100000)",
    )
    p.add_argument("--lanes-live-rate", type=float, help="the live partner's meldingen/s (10)")
    p.add_argument(
        "--lanes-live-max",
        type=int,
        help="live meldingen at most (youths seeded for them) per lanes part (3000)",
    )
    p.add_argument("--prefetch", type=int, help="VI_PREFETCH for the services (64)")
    p.add_argument("--db-pool-size", type=int, help="VI_DB_POOL_SIZE for the services (10)")
    p.add_argument("--batch-size", type=int, help="VI_BATCH_SIZE for the services (32)")
    p.add_argument("--log-level", default="info", help="VI_LOG_LEVEL for the services (info)")
    p.add_argument("--output", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = p.parse_args(argv)
    options = Options.quick_mode() if args.quick else Options()
    for name in ("meldingen", "replicas", "latency_rate", "latency_seconds"):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    for name in (
        "matcher_stored",
        "matcher_commands",
        "backlogs",
        "lanes_meldingen",
        "lanes_live_rate",
        "lanes_live_max",
    ):
        if getattr(args, name) is not None:
            setattr(options, name, getattr(args, name))
    options.skip = {s.strip() for item in args.skip for s in item.split(",") if s.strip()}
    unknown = options.skip - set(PARTS)
    if unknown:
        p.error(f"unknown part(s) {sorted(unknown)}; parts are {', '.join(PARTS)}")
    env = {"VI_LOG_LEVEL": args.log_level}
    if args.prefetch is not None:
        env["VI_PREFETCH"] = str(args.prefetch)
    if args.db_pool_size is not None:
        env["VI_DB_POOL_SIZE"] = str(args.db_pool_size)
    if args.batch_size is not None:
        env["VI_BATCH_SIZE"] = str(args.batch_size)
    options.service_env = env
    options.output = args.output
    return options


def _target(name: str, goal: str, value: float | None, met: bool | None) -> dict[str, Any]:
    return {"target": name, "goal": goal, "value": value, "met": met}


def evaluate(parts: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it was met (None: part not run)."""
    e2e, base = parts.get("e2e"), parts.get("baseline")
    ratio = round(e2e["meldingen_per_s"] / base["meldingen_per_s"], 3) if e2e and base else None
    lat = parts.get("latency")
    p99 = lat["publish_to_receipt"]["p99_ms"] if lat else None
    matcher = parts.get("matcher")
    memory = parts.get("memory")
    peak = max(s["peak_rss_mb"] for s in memory["large"]["services"].values()) if memory else None
    return _base_targets(ratio, e2e, p99, matcher, memory, peak) + _lane_targets(parts)


def _lane_targets(parts: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for variant in ("onboarding", "flood"):
        part = parts.get(variant)
        for key, name, goal in (
            ("live_publish_to_receipt", "receipt", TARGET_LIVE_RECEIPT_P99_MS),
            ("live_publish_to_match_notice", "match notice", TARGET_LIVE_NOTICE_P99_MS),
        ):
            value = part[key]["p99_ms"] if part else None
            targets.append(
                _target(
                    f"{variant}: live partner's p99 publish -> {name}",
                    f"< {goal:.0f} ms",
                    value,
                    None if value is None else value < goal,
                )
            )
    ratio = ratios(parts)["onboarding"]
    targets.append(
        _target(
            "onboarding load rate vs end-to-end rate",
            f">= {TARGET_ONBOARDING_RATIO} x",
            ratio,
            None if ratio is None else ratio >= TARGET_ONBOARDING_RATIO,
        )
    )
    return targets


def _base_targets(
    ratio: float | None,
    e2e: dict[str, Any] | None,
    p99: float | None,
    matcher: dict[str, Any] | None,
    memory: dict[str, Any] | None,
    peak: float | None,
) -> list[dict[str, Any]]:
    return [
        _target(
            "end-to-end vs bare relay",
            f">= {TARGET_RATIO} x",
            ratio,
            None if ratio is None else ratio >= TARGET_RATIO,
        ),
        _target(
            "end-to-end meldingen/s",
            f">= {TARGET_MELDINGEN_PER_S:.0f}",
            e2e["meldingen_per_s"] if e2e else None,
            None if not e2e else e2e["meldingen_per_s"] >= TARGET_MELDINGEN_PER_S,
        ),
        _target(
            "p99 publish -> receipt at the offered load",
            f"< {TARGET_P99_MS:.0f} ms",
            p99,
            None if p99 is None else p99 < TARGET_P99_MS,
        ),
        _target(
            "matcher throughput large vs small index",
            f">= {TARGET_MATCHER_RATIO} x",
            matcher["ratio"] if matcher else None,
            None if not matcher else matcher["ratio"] >= TARGET_MATCHER_RATIO,
        ),
        _target(
            "peak RSS per service with the large backlog, flat",
            f"< {TARGET_RSS_MB:.0f} MB and flat",
            peak,
            None if peak is None or memory is None else peak < TARGET_RSS_MB and memory["flat"],
        ),
    ]


async def _memory(ctx: Context, backlogs: tuple[int, int]) -> dict[str, Any]:
    small = await backlog_memory(ctx, backlogs[0])
    large = await backlog_memory(ctx, backlogs[1])
    return {"small": small, "large": large, "flat": flat(small, large)}


async def run(options: Options) -> dict[str, Any]:
    """Run the benchmark; returns (and, with `options.output`, writes) the figures."""
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    base = Settings.from_env()
    logins = Logins(base)
    region = await logins.create()
    ctx = Context(
        base=base,
        logins=logins,
        region=region,
        replicas=options.replicas,
        log_dir=options.log_dir or REPO_ROOT / "var" / "bench" / stamp,
        service_env=options.service_env,
        stall_seconds=options.stall_seconds,
    )
    parts: dict[str, Any] = {}
    errors: dict[str, str] = {}

    async def part(name: str, job: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> None:
        if name in options.skip:
            return
        print(f"==> {name}", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            parts[name] = await job()
            parts[name]["wall_seconds"] = round(time.monotonic() - began, 1)
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"[:2000]
            traceback.print_exc(file=sys.stderr)

    try:
        await part("e2e", lambda: end_to_end(ctx, options.meldingen))
        # The same load with the family match on and a register answering every lookup.
        await part("e2e-family", lambda: end_to_end(ctx, options.meldingen, family=True))
        e2e = parts.get("e2e")
        fan = (
            Fanout.observed(e2e["matches"], e2e["notify_events"], e2e["notices"], e2e["emails"])
            if e2e
            else Fanout()
        )
        await part("baseline", lambda: bare_relay(ctx, options.meldingen, fan))
        # The narrower baseline: only the receipt path (3 queues, 2 relays), no events.
        await part("baseline-receipts", lambda: bare_relay(ctx, options.meldingen, Fanout(0, 0, 0)))
        await part(
            "latency",
            lambda: latency(
                ctx,
                per_second=options.latency_rate,
                seconds=options.latency_seconds,
                warmup_seconds=options.latency_warmup,
            ),
        )
        await part(
            "matcher",
            lambda: matcher_scaling(
                ctx, sizes=options.matcher_stored, count=options.matcher_commands
            ),
        )
        await part("memory", lambda: _memory(ctx, options.backlogs))
        size = LaneLoad(options.lanes_meldingen, options.lanes_live_rate, options.lanes_live_max)
        for variant in VARIANTS:
            await part(variant, functools.partial(lane_load, ctx, variant, size))
    finally:
        await logins.delete()
    e2e, baseline = parts.get("e2e"), parts.get("baseline")
    receipts_only = parts.get("baseline-receipts")
    result = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "quick": options.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": {
            **{k: v for k, v in asdict(options).items() if k not in ("skip", "output", "log_dir")},
            "skip": sorted(options.skip),
        },
        "parts": parts,
        "ratio_e2e_vs_relay": (
            round(e2e["meldingen_per_s"] / baseline["meldingen_per_s"], 3)
            if e2e and baseline
            else None
        ),
        "ratio_e2e_family_vs_e2e": (
            round(parts["e2e-family"]["meldingen_per_s"] / e2e["meldingen_per_s"], 3)
            if e2e and parts.get("e2e-family")
            else None
        ),
        "ratio_e2e_vs_receipt_path_relay": (
            round(e2e["meldingen_per_s"] / receipts_only["meldingen_per_s"], 3)
            if e2e and receipts_only
            else None
        ),
        "ratio_load_vs_e2e": ratios(parts),
        "targets": evaluate(parts),
        "errors": errors,
        "logs": str(ctx.log_dir),
    }
    if options.output is not None:
        options.output.mkdir(parents=True, exist_ok=True)
        path = options.output / f"{stamp}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        result["written_to"] = str(path)
    return result


def summary(result: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    parts = result["parts"]
    rows: list[tuple[str, str]] = []
    if "e2e" in parts:
        e = parts["e2e"]
        rows += [
            (
                "end to end",
                f"{e['meldingen']} meldingen ({e['matches']} matches) in {e['seconds']} s: "
                f"{e['meldingen_per_s']} meldingen/s, {e['hops_per_s']} hops/s",
            ),
            (
                "  counts",
                f"sent {e['sent']} receipted {e['receipted']} notices {e['notices']} "
                f"e-mails {e['emails']} statuses {e['receipt_statuses']}",
            ),
        ]
    if "e2e-family" in parts:
        f = parts["e2e-family"]
        rows += [
            (
                "end to end, family lookups",
                f"{f['meldingen']} meldingen, {f['family']['lookups']} lookups answered"
                f" ({f['family']['facts_receipted']} facts receipted) in {f['seconds']} s:"
                f" {f['meldingen_per_s']} meldingen/s",
            ),
        ]
        if result.get("ratio_e2e_family_vs_e2e") is not None:
            rows.append(
                ("  ratio", f"{result['ratio_e2e_family_vs_e2e']} x end to end without lookups")
            )
    relays = (
        ("baseline", "bare relay, every hop", "ratio_e2e_vs_relay", "ratio"),
        (
            "baseline-receipts",
            "bare relay, receipt path only",
            "ratio_e2e_vs_receipt_path_relay",
            "ratio, receipt path only (no target)",
        ),
    )
    for part, label, ratio_key, ratio_label in relays:
        if part in parts:
            b = parts[part]
            rows.append(
                (
                    label,
                    f"{b['hops']} hops in {b['seconds']} s: {b['meldingen_per_s']} meldingen/s,"
                    f" {b['hops_per_s']} hops/s",
                )
            )
        if result.get(ratio_key) is not None:
            rows.append((ratio_label, f"{result[ratio_key]} x the bare relay"))
    if "latency" in parts:
        lat = parts["latency"]
        for key in ("publish_to_receipt", "publish_to_match_notice"):
            s = lat[key]
            rows.append(
                (
                    f"{key.replace('_', ' ')} @{lat['offered_per_s']:.0f}/s",
                    f"p50 {s['p50_ms']} ms  p95 {s['p95_ms']} ms  p99 {s['p99_ms']} ms "
                    f"(n={s['n']})",
                )
            )
    if "matcher" in parts:
        m = parts["matcher"]
        rows.append(
            (
                "matcher",
                f"{m['small']['stored_meldingen']} stored: {m['small']['commands_per_s']}/s; "
                f"{m['large']['stored_meldingen']} stored: {m['large']['commands_per_s']}/s; "
                f"ratio {m['ratio']} (by CPU per command: {m['cpu_ratio']})",
            )
        )
    if "memory" in parts:
        mem = parts["memory"]
        for size in ("small", "large"):
            r = mem[size]
            peaks = ", ".join(
                f"{name} {s['peak_rss_mb']}" for name, s in sorted(r["services"].items())
            )
            rows.append((f"peak RSS MB, backlog {r['backlog']}", peaks))
        rows.append(("memory flat", str(mem["flat"])))
    for variant in VARIANTS:
        if variant in parts:
            v = parts[variant]
            rows.append(
                (
                    f"{variant} load",
                    f"{v['load_meldingen']} meldingen in {v['load_seconds']} s: "
                    f"{v['load_meldingen_per_s']}/s "
                    f"({result['ratio_load_vs_e2e'][variant]} x end to end)",
                )
            )
            for key in ("live_publish_to_receipt", "live_publish_to_match_notice"):
                s = v[key]
                rows.append(
                    (
                        f"  live {key.removeprefix('live_').replace('_', ' ')} "
                        f"@{v['live_offered_per_s']:.0f}/s",
                        f"p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  max {s['max_ms']} ms "
                        f"(n={s['n']})",
                    )
                )
    for t in result["targets"]:
        mark = {True: "met", False: "NOT met", None: "not run"}[t["met"]]
        rows.append((f"target: {t['target']}", f"{t['goal']}: {t['value']} -> {mark}"))
    for name, error in result["errors"].items():
        rows.append((f"ERROR in {name}", error.splitlines()[0]))
    width = max(len(k) for k, _ in rows) if rows else 0
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if "written_to" in result:
        lines.append(f"figures written to {result['written_to']}")
    return "\n".join(lines)


async def _interruptible(job: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run `job`; SIGINT or SIGTERM cancels it, so every part stops its services and
    removes its vhost, database and logins on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    return await job


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    os.environ.setdefault("VI_LOG_LEVEL", "warning")
    try:
        result = asyncio.run(_interruptible(run(options)))
    except asyncio.CancelledError:
        print("interrupted: services stopped, benchmark region removed", file=sys.stderr)
        raise SystemExit(130) from None
    print(summary(result))
    if result["errors"]:
        raise SystemExit(1)
