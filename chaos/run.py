"""`python -m chaos.run`: the chaos run (see docs/reliability.md).

    python -m chaos.run               # the full run: 20,000 meldingen + 10,000 bad
    python -m chaos.run --quick       # 1,000 + 500, for development
    python -m chaos.run --private-backends   # own RabbitMQ node + PostgreSQL cluster

Exit status 0 when every check passed; the figures go to chaos/results/<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika

from chaos import hostile, logscan, security, smtp_sink, verify
from chaos.backends import Backends, PrivateBackends, shared_backends
from chaos.environment import Environment
from chaos.fleet import REPO_ROOT, Fleet
from chaos.hostile import BadMessage
from chaos.partner import Partner
from chaos.workload import Stories, make_plans, utc_now
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES, parked_queue
from shared.db.pool import connect as connect_db

RESULTS_DIR = REPO_ROOT / "chaos" / "results"
WORK_ROOT = REPO_ROOT / "var" / "chaos"


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
    keep: bool = False
    corpus: int = 2_500
    receipt_timeout: float = 300.0
    drain_timeout: float = 240.0
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    label: str = "full"


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1,000 meldingen + 500 bad")
    parser.add_argument("--meldingen", type=int)
    parser.add_argument("--bad", type=int)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--in-flight", type=int, default=250, help="stories at once")
    parser.add_argument("--no-kills", action="store_true")
    parser.add_argument(
        "--kill-every",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="seconds between two SIGKILLs (default 4 10; --quick 2 5)",
    )
    parser.add_argument("--no-broker-restart", action="store_true")
    parser.add_argument(
        "--broker-restart",
        choices=["app", "node"],
        default="app",
        help="app: rabbitmqctl stop_app/start_app (default); node: stop and start the node",
    )
    parser.add_argument("--no-database-restart", action="store_true")
    parser.add_argument(
        "--private-backends",
        action="store_true",
        help="run an own RabbitMQ node and PostgreSQL cluster (restarts touch nothing else)",
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
    options.keep = args.keep
    return options


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    events: list[dict[str, Any]] = field(default_factory=list)

    def note(self, what: str, **detail: Any) -> None:
        at = time.monotonic() - self.started
        self.events.append({"t": round(at, 1), "event": what, **detail})
        extra = " ".join(f"{k}={v}" for k, v in detail.items())
        print(f"[{at:7.1f}s] {what} {extra}".rstrip(), flush=True)


class Run:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.run_id = datetime.now(UTC).strftime("%Y%m%dt%H%M%S") + f"{options.seed % 1000:03d}"
        self.work_dir = WORK_ROOT / self.run_id
        self.t = Timeline()
        self.partners: dict[str, Partner] = {}
        self.bad_sent: list[BadMessage] = []
        self.backend_restarts: list[dict[str, Any]] = []
        self.stop_chaos = asyncio.Event()
        self.queue_snapshot: dict[str, Any] = {}
        self.sink: asyncio.subprocess.Process | None = None
        self.mail_file = self.work_dir / "smtp-received.bin"

    # --- the run ------------------------------------------------------------------

    async def main(self) -> int:
        o = self.o
        print(
            f"chaos run {self.run_id}: {o.meldingen} meldingen, {o.bad} bad messages, "
            f"{o.replicas} replicas per service, seed {o.seed}",
            flush=True,
        )
        backends: Backends = PrivateBackends.create() if o.private_backends else shared_backends()
        await backends.start()
        try:
            self.t.note("backends up", kind=backends.kind)
            env = await Environment.create(backends, self.run_id, self.work_dir, o.retry_delays_ms)
            self.t.note("region created", vhost=env.vhost, database=env.database)
            try:
                return await self._run(env, backends)
            finally:
                if not o.keep:
                    await env.destroy()
        finally:
            await backends.stop()

    async def _run(self, env: Environment, backends: Backends) -> int:
        o = self.o
        fleet: Fleet | None = None
        try:
            corpus = await asyncio.to_thread(hostile.draw_corpus, o.corpus)
            self.t.note(
                "hostile corpus drawn", cases=len(corpus.cases), seconds=round(corpus.seconds, 1)
            )
            now = utc_now()
            plans = make_plans(o.meldingen, self.rng, now)
            bad = list(hostile.messages(corpus, o.bad, env.region, self.rng, now))
            self.t.note(
                "workload planned",
                youths=len(plans.youths),
                meldingen=plans.meldingen,
                bad=len(bad),
            )
            self.work_dir.mkdir(parents=True, exist_ok=True)
            smtp_port = _free_port()
            sink = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "chaos.smtp_sink",
                "--port",
                str(smtp_port),
                "--out",
                str(self.mail_file),
                cwd=REPO_ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            assert sink.stdout is not None
            await asyncio.wait_for(sink.stdout.readline(), 30)
            self.sink = sink
            fleet = Fleet(
                env.service_env(
                    VI_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
                    VI_DB_POOL_SIZE="6",
                    VI_PREFETCH="32",
                    VI_RETENTION_INTERVAL_SECONDS="3",
                    VI_CONFIG_RELOAD_SECONDS="5",
                    VI_LOG_LEVEL="info",
                ),
                self.work_dir / "logs",
                o.replicas,
            )
            await fleet.start_all()
            self.t.note("services started", processes=len(fleet.slots))
            for p in env.region.partner:
                partner = Partner(p.id, p.broker_user, env.partner_url(p.id))
                await partner.start()
                self.partners[p.id] = partner
            probes = await security.probe_all(env)
            self.t.note("security probes", passed=sum(pr.ok for pr in probes), of=len(probes))
            queues_before = await self._queue_types(env)

            stories = Stories(
                self.partners, receipt_timeout=o.receipt_timeout, in_flight=o.in_flight, now=utc_now
            )
            total = len(plans.youths)

            def fraction() -> float:
                return stories.done / total if total else 1.0

            async def paced() -> None:
                return None

            tasks = [
                asyncio.create_task(self._progress(env, stories, total)),
                asyncio.create_task(self._backend_chaos(backends, fraction)),
            ]
            if o.kills:
                tasks.append(asyncio.create_task(self._kill_loop(fleet)))
            sender = asyncio.create_task(self._send_bad(bad, fraction))
            load_started = time.monotonic()
            await stories.run(plans.youths, paced)
            await sender
            load_seconds = time.monotonic() - load_started
            self.t.note("workload sent", seconds=round(load_seconds, 1))
            self.stop_chaos.set()
            await asyncio.gather(tasks[1], *(tasks[2:]), return_exceptions=True)
            await fleet.ensure_all_running()
            await self._drain(env, stories, bad)
            tasks[0].cancel()
            probes += [
                security.Probe(f"{p.name} (after the restarts)", p.ok, p.detail)
                for p in await security.probe_all(env)
            ]
            queues_after = await self._queue_types(env)
            queue_state = await self._queues(env)
            exit_codes = await fleet.stop_all()
            await self._stop_sink()
            self.t.note("services stopped", exit_codes=dict(Counter(exit_codes.values())))
            report = await self._verify(
                env,
                fleet,
                stories,
                bad,
                corpus,
                probes,
                queue_state,
                queues_before,
                queues_after,
                exit_codes,
            )
            report.figures["load_seconds"] = round(load_seconds, 1)
            report.figures["meldingen_planned"] = plans.meldingen
            report.figures["youths"] = len(plans.youths)
            return self._finish(report, plans.meldingen)
        finally:
            for partner in self.partners.values():
                await partner.close()
            if fleet is not None:
                await fleet.stop_all()
            await self._stop_sink()

    async def _stop_sink(self) -> None:
        if self.sink is not None and self.sink.returncode is None:
            self.sink.send_signal(signal.SIGTERM)
            await self.sink.wait()

    async def _send_bad(self, bad: list[BadMessage], fraction: Any) -> None:
        """Mixed in at the pace of the valid workload, up to 64 at a time."""
        gate = asyncio.Semaphore(64)
        tasks: set[asyncio.Task[None]] = set()

        async def one(message: BadMessage) -> None:
            try:
                await self.partners[message.partner].send(
                    message.routing_key,
                    message.body,
                    message_id=message.message_id,
                    user_id=message.user_id,
                )
                self.bad_sent.append(message)
            finally:
                gate.release()

        for i, message in enumerate(bad):
            while i / len(bad) > fraction() + 0.05:  # noqa: ASYNC110 - a pace, not an event
                await asyncio.sleep(0.2)
            await gate.acquire()
            task = asyncio.create_task(one(message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)

    async def _kill_loop(self, fleet: Fleet) -> None:
        low, high = self.o.kill_every
        while not self.stop_chaos.is_set():
            try:
                await asyncio.wait_for(self.stop_chaos.wait(), self.rng.uniform(low, high))
                return
            except TimeoutError:
                pass
            name = await fleet.kill_random(self.rng, restart_after=self.rng.uniform(0.5, 3.0))
            if name:
                self.t.note("SIGKILL", process=name)

    async def _backend_chaos(self, backends: Backends, fraction: Any) -> None:
        plan: list[tuple[float, str, Callable[[], Awaitable[str]]]] = []
        if self.o.broker_restart:
            mode = self.o.broker_restart_mode
            plan.append((0.3, "rabbitmq", lambda: backends.restart_broker(mode)))
        if self.o.database_restart:
            plan.append((0.6, "postgresql", backends.restart_database))
        for at, name, restart in plan:
            while fraction() < at and not self.stop_chaos.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            if self.stop_chaos.is_set():
                self.t.note(f"{name} restart skipped: the workload ended first")
                return
            self.t.note(f"{name} restarting")
            started = time.monotonic()
            command = await restart()
            seconds = round(time.monotonic() - started, 1)
            self.backend_restarts.append({"backend": name, "command": command, "seconds": seconds})
            self.t.note(f"{name} back", seconds=seconds)

    async def _queues(self, env: Environment) -> list[dict[str, Any]]:
        return [
            {
                "name": q["name"],
                "messages": q.get("messages", 0),
                "ready": q.get("messages_ready", 0),
                "unacked": q.get("messages_unacknowledged", 0),
                "consumers": q.get("consumers", 0),
                "type": q.get("type"),
            }
            for q in await env.management.queues(env.vhost)
        ]

    async def _queue_types(self, env: Environment) -> dict[str, str]:
        return {q["name"]: str(q["type"]) for q in await self._queues(env)}

    async def _progress(self, env: Environment, stories: Stories, total: int) -> None:
        while True:
            await asyncio.sleep(5)
            received = sum(len(p.received) for p in self.partners.values())
            try:
                queues = await self._queues(env)
                depth = {
                    q["name"].removeprefix("vi."): q["messages"]
                    for q in queues
                    if q["name"] in WORK_QUEUES and q["messages"]
                }
            except Exception as exc:
                depth = {"?": type(exc).__name__}
            self.t.note(
                "progress",
                youths=f"{stories.done}/{total}",
                registrations=stories.registrations_sent,
                valid_sent=len(stories.sent),
                bad_sent=len(self.bad_sent),
                received=received,
                queues=depth or "empty",
            )

    async def _drain(self, env: Environment, stories: Stories, bad: list[BadMessage]) -> None:
        """Until every answer and notice is in and the queues are quiet (or timeout)."""
        deadline = time.monotonic() + self.o.drain_timeout
        quiet_since: float | None = None
        plain = [
            (b.partner, b.message_id)
            for b in bad
            if b.user_id == "" and b.message_id and not b.answered_without_id
        ]
        while time.monotonic() < deadline:
            must, _ = verify.expected_notices(stories.results)
            seen = set(verify.tally(self.partners.values()).ids_by_key)
            answered = all(self.partners[p].final_receipt(m) for p, m in plain if m)
            try:
                queues = await self._queues(env)
            except Exception:
                queues = [{"name": "?", "messages": 1}]
            busy = sum(
                q["messages"]
                for q in queues
                if q["name"] != REJECTED_QUEUE and not q["name"].endswith(".parked")
            )
            if must <= seen and answered and busy == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 3:
                    self.t.note("drained")
                    return
            else:
                quiet_since = None
            await asyncio.sleep(1)
        self.t.note("drain timed out", seconds=self.o.drain_timeout)

    async def _read_queue(
        self, env: Environment, name: str
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        connection = await aio_pika.connect(env.service_amqp_url)
        out = []
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(name, ensure=False)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                out.append(message)
        finally:
            await connection.close()
        return out

    # --- the verdict --------------------------------------------------------------

    async def _verify(
        self,
        env: Environment,
        fleet: Fleet,
        stories: Stories,
        bad: list[BadMessage],
        corpus: hostile.Corpus,
        probes: list[security.Probe],
        queue_state: list[dict[str, Any]],
        queues_before: dict[str, str],
        queues_after: dict[str, str],
        exit_codes: dict[str, int | None],
    ) -> verify.Report:
        report = verify.Report()
        partners = list(self.partners.values())
        rejected = await self._read_queue(env, REJECTED_QUEUE)
        rejected_ids = Counter(m.message_id or "" for m in rejected)
        parked: list[dict[str, Any]] = []
        for work_queue in WORK_QUEUES:
            for message in await self._read_queue(env, parked_queue(work_queue)):
                headers = message.headers or {}
                parked.append(
                    {
                        "queue": work_queue,
                        "message_id": message.message_id,
                        "type": message.type,
                        "error": str(headers.get("x-vi-error")),
                    }
                )
        verify.check_receipts(
            report, self.partners, stories.sent, self.bad_sent, stories.results, rejected_ids
        )
        verify.check_notices(report, partners, stories.results)
        conn = await connect_db(env.database_url)
        try:
            await verify.check_database(report, conn, stories.results)
            sent_rows = {
                r["message_id"] for r in await conn.fetch("SELECT message_id FROM sent_email")
            }
            inbox = await conn.fetchval("SELECT count(*) FROM inbox")
        finally:
            await conn.close()
        texts = verify.check_email(
            report, smtp_sink.read_messages(self.mail_file), sent_rows, partners
        )
        expected_inbox = len({(s.partner, s.message_id) for s in stories.sent}) + len(
            {
                (b.partner, b.message_id)
                for b in self.bad_sent
                if b.user_id == "" and not b.answered_without_id
            }
        )
        report.check(
            "one inbox row per answered message_id",
            inbox == expected_inbox,
            {"db": inbox, "expected": expected_inbox},
        )

        # Queues: work and retry queues empty, nothing parked, consumers back.
        stalled = [
            q
            for q in queue_state
            if q["messages"] and q["name"] != REJECTED_QUEUE and not q["name"].endswith(".parked")
        ]
        report.check(
            "no queue stalls: every work, retry and partner queue empty", not stalled, stalled
        )
        report.check("nothing parked", not parked, parked[:20])
        report.figures["parked"] = len(parked)
        consumers = {q["name"]: q["consumers"] for q in queue_state}
        want = {name: self.o.replicas for name in WORK_QUEUES}
        report.check(
            "every work queue has all its consumers at the end",
            all(consumers.get(n, 0) >= c for n, c in want.items()),
            {n: consumers.get(n, 0) for n in want},
        )
        report.check(
            "quorum queues survived the broker restart",
            queues_before == queues_after and all(t == "quorum" for t in queues_after.values()),
            {"lost": sorted(set(queues_before) - set(queues_after))},
        )
        failed_starts = fleet.start_failures
        report.figures["start_failures"] = len(failed_starts)
        report.figures["start_failure_reasons"] = dict(
            Counter(e.last_line.split(":")[0][-80:] for e in failed_starts)
        )
        unexpected = fleet.unexpected_exits
        report.check(
            "no service process died by itself",
            not unexpected,
            [asdict(e) for e in unexpected[:10]],
        )
        report.check(
            "every service drains and exits 0 on SIGTERM",
            all(c == 0 for c in exit_codes.values()),
            exit_codes,
        )
        for probe in probes:
            report.check(f"security: {probe.name} is refused", probe.ok, probe.detail)
        foreign = [r for r in stories.results if r.plan.foreign is not None]
        foreign_failures = [
            f"{r.plan.label}: {x}" for r in foreign for x in r.failures if x.startswith("foreign")
        ]
        report.figures["foreign_ref_attempts"] = len(foreign)
        report.check(
            f"security: another partner's melding_ref is unknown_melding "
            f"({len(foreign)} attempts, nothing changed)",
            bool(foreign) and not foreign_failures,
            foreign_failures[:10],
        )

        # Privacy: personal data of the run in no log line, notice or e-mail.
        secrets = logscan.Secrets()
        for r in stories.results:
            plan = r.plan
            for bsn in (plan.bsn, plan.unknown_bsn, plan.duplicate_ref_bsn):
                if bsn:
                    secrets.bsns.add(bsn)
            if plan.surname:
                secrets.add_surname(plan.surname)
            secrets.birth_dates.add(plan.birth_date.isoformat())
            secrets.birth_dates.update(d.isoformat() for d in plan.other_birth_date.values())
        for surname in stories.surnames_sent:
            secrets.add_surname(surname)
        for value in corpus.secrets:
            secrets.add_any(value)
        scanned = logscan.scan_log_files(fleet.log_files(), secrets)
        # The scanner must see a leak when there is one: plant one of each kind.
        canary = stories.results[0].plan
        planted = json.dumps(
            {
                "event": "canary",
                "bsn": next(iter(sorted(secrets.bsns))),
                "born": canary.birth_date.isoformat(),
                "name": next(iter(sorted(secrets.surnames))),
            }
        )
        report.check(
            "the privacy scan finds a planted BSN, surname and birth date",
            {k for k, _ in logscan.find_secrets(planted, secrets)}
            == {"bsn", "birth_date", "surname"},
        )
        notices = [
            (f"{p.id}:{g.type}", json.dumps(g.body, ensure_ascii=False))
            for p in partners
            for g in p.received
        ]
        leaks = (
            scanned.hits + logscan.scan_texts(notices, secrets) + logscan.scan_texts(texts, secrets)
        )
        report.figures["log_lines_scanned"] = scanned.lines
        report.figures["log_levels"] = dict(scanned.levels)
        report.figures["log_events_top"] = dict(scanned.events.most_common(25))
        report.figures["secrets_scanned_for"] = {
            "bsn": len(secrets.bsns),
            "surname": len(secrets.surnames),
            "birth_date": len(secrets.birth_dates),
        }
        report.check(
            "no BSN, surname or birth date in any log line, notice or e-mail",
            not leaks,
            [asdict(h) for h in leaks[:20]],
        )
        f = report.figures
        f["kills"] = len(fleet.kills)
        f["kills_by_service"] = dict(Counter(name.rsplit("-", 1)[0] for _, name in fleet.kills))
        f["backend_restarts"] = self.backend_restarts
        f["partner_resends"] = sum(p.stats.resends for p in partners)
        f["partner_send_errors"] = {p.id: p.stats.errors for p in partners if p.stats.errors}
        f["partner_reconnects"] = {p.id: p.reconnects for p in partners}
        f["in_vi_rejected_total"] = len(rejected)
        return report

    def _finish(self, report: verify.Report, meldingen: int) -> int:
        f = report.figures
        print("\n" + "=" * 72)
        print(
            f"chaos run {self.run_id} ({self.o.label}): {meldingen} meldingen, "
            f"{f.get('bad_sent')} bad messages, {f.get('kills')} SIGKILLs, "
            f"restarts: {[r['backend'] for r in self.backend_restarts]}"
        )
        print(
            f"sent {f.get('sent')}, receipted {f.get('receipted')} (distinct message_ids), "
            f"in vi.rejected {f.get('in_vi_rejected')}, lost {f.get('lost')}"
        )
        print(
            f"notices: expected {f.get('notices_expected')}, delivered "
            f"{f.get('notices_delivered')}, duplicate effects {f.get('duplicate_effects')}, "
            f"duplicate deliveries {f.get('duplicate_deliveries')}"
        )
        print(
            f"log lines scanned {f.get('log_lines_scanned')}, database compared for "
            f"{f.get('youths_compared')} youths, parked {f.get('parked')}"
        )
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            detail = "" if check.ok else f"  {json.dumps(check.detail, default=str)[:400]}"
            print(f"  [{mark}] {check.name}{detail}")
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.run_id}.json"
        document = {
            "run_id": self.run_id,
            "label": self.o.label,
            "ok": report.ok,
            "options": asdict(self.o),
            "figures": f,
            "checks": [asdict(c) for c in report.checks],
            "timeline": self.t.events,
            "seconds": round(time.monotonic() - self.t.started, 1),
            "artifacts": str(self.work_dir),
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"{'PASSED' if report.ok else 'FAILED'} in {document['seconds']} s; results: {path}")
        return 0 if report.ok else 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    # The partners' broker clients log every connection the restart drops; the run
    # counts those itself (partner_send_errors), so keep the progress output readable.
    for name in ("aio_pika", "aiormq"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    sys.exit(asyncio.run(Run(options).main()))


if __name__ == "__main__":
    main()
