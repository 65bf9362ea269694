"""The run's options and its command line (`python -m chaos.run --help`)."""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass

DESCRIPTION = """The chaos run (see docs/reliability.md).

    python -m chaos.run               # the full run: 20,000 meldingen + 10,000 bad
    python -m chaos.run --quick       # 1,000 + 500, for development
    python -m chaos.run --private-backends   # own RabbitMQ node + PostgreSQL cluster
    python -m chaos.run --cluster    # 3 RabbitMQ nodes + PostgreSQL with a standby

Exit status 0 when every check passed; the figures go to chaos/results/<time>.json.
"""


@dataclass
class Options:
    meldingen: int = 20_000
    bad: int = 10_000
    replicas: int = 2
    seed: int = 0
    in_flight: int = 250
    kill_every: tuple[float, float] = (4.0, 10.0)
    kills: bool = True
    broker_restart: bool = True
    broker_restart_mode: str = "app"
    database_restart: bool = True
    private_backends: bool = False
    cluster: bool = False
    keep: bool = False
    corpus: int = 2_500
    receipt_timeout: float = 300.0
    drain_timeout: float = 240.0
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    label: str = "full"
    # Write chaos/results/<run>.json (the failover tests keep theirs out of the repo).
    record: bool = True


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1,000 meldingen + 500 bad")
    parser.add_argument("--meldingen", type=int, help="registrations (default 20,000)")
    parser.add_argument("--bad", type=int, help="hostile messages (default 10,000)")
    parser.add_argument("--replicas", type=int, default=2, help="processes per service")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's plan")
    parser.add_argument("--in-flight", type=int, default=250, help="stories at once")
    parser.add_argument("--no-kills", action="store_true", help="no SIGKILLs")
    parser.add_argument(
        "--kill-every",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="seconds between two SIGKILLs (default 4 10; --quick 2 5)",
    )
    parser.add_argument("--no-broker-restart", action="store_true", help="leave RabbitMQ be")
    parser.add_argument(
        "--broker-restart",
        choices=["app", "node"],
        default="app",
        help="app: rabbitmqctl stop_app/start_app (default); node: stop and start the node",
    )
    parser.add_argument("--no-database-restart", action="store_true", help="leave PostgreSQL be")
    parser.add_argument(
        "--private-backends",
        action="store_true",
        help="run an own RabbitMQ node and PostgreSQL cluster (restarts touch nothing else)",
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="run on an own 3-node RabbitMQ cluster and a PostgreSQL primary with a "
        "synchronous standby (root): the broker restart SIGKILLs the node leading the "
        "ingest and matcher queues and brings it back, the database restart is a failover",
    )
    parser.add_argument("--keep", action="store_true", help="keep vhost, database and logins")
    args = parser.parse_args(argv)
    options = Options()
    if args.quick:
        options.meldingen, options.bad, options.corpus = 1_000, 500, 400
        options.kill_every = (2.0, 5.0)
        options.receipt_timeout, options.drain_timeout = 180.0, 120.0
        options.label = "quick"
    if args.meldingen is not None:
        options.meldingen = args.meldingen
        options.label = "custom"
    if args.bad is not None:
        options.bad = args.bad
        options.corpus = min(options.corpus, max(50, args.bad // 3))
    options.replicas = args.replicas
    options.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    options.in_flight = args.in_flight
    options.kills = not args.no_kills
    if args.kill_every:
        options.kill_every = (args.kill_every[0], args.kill_every[1])
    options.broker_restart = not args.no_broker_restart
    options.broker_restart_mode = args.broker_restart
    options.database_restart = not args.no_database_restart
    options.private_backends = args.private_backends
    options.cluster = args.cluster
    if options.cluster:
        options.label += "-cluster"
    options.keep = args.keep
    return options
