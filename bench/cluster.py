"""`python -m bench.cluster`: the end-to-end benchmark on one broker node and on three
clustered nodes of this machine, in the same run, alternating, and the ratio.

Both brokers are started by the cluster harness (testing/cluster_backends.py) with the
same settings (one scheduler per Erlang VM), and both use the same PostgreSQL primary
with a synchronous standby, so the number of broker nodes is the only difference: on
three nodes every quorum queue has a replica on each, and a message is written to
three Raft logs on the same two cores before it is confirmed. Each round runs the
`e2e` part (`python -m bench`, unchanged) once against each, in turn; the ratio is of
the median rates. The idle broker keeps running beside the measured one (a little
background CPU for both). Needs root (PostgreSQL runs as the postgres user).

    python -m bench.cluster                       # 3 rounds of 10,000 meldingen
    python -m bench.cluster --rounds 2 --meldingen 5000

Figures: bench/results/cluster-<time>.json (each run's own in cluster-<time>/) and a
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.run import PARTS, RESULTS_DIR
from testing.cluster_backends import BrokerCluster, DatabasePair, new_directory
from testing.processes import REPO_ROOT

SETUPS = {"1 node": 1, "3 nodes": 3}


def _busy_fraction(before: list[int], after: list[int]) -> float:
    """The machine's CPU busy share between two /proc/stat samples."""
    idle = (after[3] + after[4]) - (before[3] + before[4])
    total = sum(after) - sum(before)
    return round(1 - idle / total, 3) if total else 0.0


def _cpu_sample() -> list[int]:
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def _e2e(environment: dict[str, str], meldingen: int, output: Path) -> dict[str, Any]:
    """One `e2e` part of the benchmark against these backends; its figures."""
    output.mkdir(parents=True)
    skip = ",".join(part for part in PARTS if part != "e2e")
    before, began = _cpu_sample(), time.monotonic()
    subprocess.run(  # noqa: S603 (our own module, our own arguments)
        [sys.executable, "-m", "bench", "--meldingen", str(meldingen), "--skip", skip,
         "--output", str(output)],
        env={**os.environ, **environment},
        cwd=REPO_ROOT,
        check=False,
    )  # fmt: skip
    busy = _busy_fraction(before, _cpu_sample())
    (result_file,) = output.glob("*.json")
    result = json.loads(result_file.read_text())
    e2e = result["parts"].get("e2e")
    if e2e is None:
        raise RuntimeError(f"the e2e part failed: {result['errors']}")
    return {
        "meldingen_per_s": e2e["meldingen_per_s"],
        "seconds": e2e["seconds"],
        "receipted": e2e["receipted"],
        "notices": e2e["notices"],
        "emails": e2e["emails"],
        "wall_seconds": round(time.monotonic() - began, 1),
        "machine_busy": busy,
        "load_average": os.getloadavg()[0],
        "result_file": str(result_file.relative_to(REPO_ROOT)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="runs on each broker (3)")
    parser.add_argument("--meldingen", type=int, default=10_000, help="per run (10000)")
    args = parser.parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = new_directory()
    database = DatabasePair(directory / "postgres")
    brokers = {
        name: BrokerCluster.prepare(directory / name.replace(" ", "-"), size)
        for name, size in SETUPS.items()
    }
    outputs = RESULTS_DIR / f"cluster-{stamp}"  # each run's own figures
    runs: list[dict[str, Any]] = []
    try:
        with ThreadPoolExecutor() as pool:
            started = [pool.submit(database.start)]
            started += [pool.submit(broker.start) for broker in brokers.values()]
            for future in started:
                future.result()
        for round_number in range(1, args.rounds + 1):
            for name, broker in brokers.items():
                environment = {
                    "VI_AMQP_URL": broker.amqp_url(),
                    "VI_MANAGEMENT_URL": broker.management_urls(),
                    "VI_DATABASE_URL": database.url("postgres"),
                }
                print(f"==> round {round_number}, {name}", file=sys.stderr, flush=True)
                run_dir = outputs / f"{round_number}-{len(broker.nodes)}"
                figures = _e2e(environment, args.meldingen, run_dir)
                runs.append({"round": round_number, "broker": name, **figures})
    finally:
        for broker in brokers.values():
            broker.stop()
        database.stop()
        shutil.rmtree(directory, ignore_errors=True)
    medians = {
        name: statistics.median(r["meldingen_per_s"] for r in runs if r["broker"] == name)
        for name in SETUPS
    }
    result = {
        "started_at": stamp,
        "meldingen_per_run": args.meldingen,
        "rounds": args.rounds,
        "runs": runs,
        "median_meldingen_per_s": medians,
        "ratio_3_nodes_vs_1": round(medians["3 nodes"] / medians["1 node"], 3),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"cluster-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'round':>5}  {'broker':8}  {'meldingen/s':>11}  {'busy':>5}  {'load':>5}")
    for r in runs:
        print(
            f"{r['round']:>5}  {r['broker']:8}  {r['meldingen_per_s']:>11.1f}  "
            f"{r['machine_busy']:>5.0%}  {r['load_average']:>5.1f}"
        )
    print(f"median: {medians}; 3 nodes / 1 node = {result['ratio_3_nodes_vs_1']}  ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
