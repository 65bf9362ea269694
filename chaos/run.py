"""`python -m chaos.run`: the chaos run (see docs/reliability.md).

    python -m chaos.run               # the full run: 20,000 meldingen + 10,000 bad
    python -m chaos.run --quick       # 1,000 + 500, for development
    python -m chaos.run --private-backends   # own RabbitMQ node + PostgreSQL cluster

Exit status 0 when every check passed; the figures go to chaos/results/<time>.json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from chaos import hostile, security, verdict, verify
from chaos.backends import Backends, PrivateBackends, shared_backends
from chaos.cluster import ClusterChaosBackends, failover_seconds, longest_outages
from chaos.environment import Environment
from chaos.fleet import Fleet
from chaos.hostile import BadMessage
from chaos.options import Options, parse_args
from chaos.partner import Partner
from chaos.plans import REGISTER, make_plans
from chaos.workload import RegisterDesk, Stories, expect_family_matches, utc_now
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES
from testing.ports import free_port
from testing.processes import REPO_ROOT, start_module

RESULTS_DIR = REPO_ROOT / "chaos" / "results"
WORK_ROOT = REPO_ROOT / "var" / "chaos"


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
        self.sink: asyncio.subprocess.Process | None = None
        self.mail_file = self.work_dir / "smtp-received.bin"
        self.report: verify.Report | None = None

    # --- the run ------------------------------------------------------------------

    async def main(self) -> int:
        o = self.o
        print(
            f"chaos run {self.run_id}: {o.meldingen} meldingen, {o.bad} bad messages, "
            f"{o.replicas} replicas per service, seed {o.seed}",
            flush=True,
        )
        backends: Backends
        if o.cluster:
            backends = ClusterChaosBackends.create()
            backends.logs_to = self.work_dir / "rabbitmq"
        elif o.private_backends:
            backends = PrivateBackends.create()
        else:
            backends = shared_backends()
        await backends.start()
        try:
            self.t.note("backends up", kind=backends.kind)
            env = await Environment.create(backends, self.run_id, self.work_dir, o.retry_delays_ms)
            self.t.note("region created", vhost=env.vhost, database=env.database)
            if isinstance(backends, ClusterChaosBackends):
                backends.status_env = env.service_env()
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
            smtp_port = await self._start_sink()
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
                partner = Partner(p.id, p.own_broker_user, env.partner_url(p.id))
                await partner.start()
                self.partners[p.id] = partner
            probes = await security.probe_all(env)
            self.t.note("security probes", passed=sum(pr.ok for pr in probes), of=len(probes))
            queues_before = await self._queue_types(env)

            stories = Stories(
                self.partners, receipt_timeout=o.receipt_timeout, in_flight=o.in_flight, now=utc_now
            )
            desk = RegisterDesk(stories, self.partners[REGISTER], plans.youths)
            desk_stop = asyncio.Event()
            desk_task = asyncio.create_task(desk.run(desk_stop))
            total = len(plans.youths)

            def fraction() -> float:
                return stories.done / total if total else 1.0

            progress = asyncio.create_task(self._progress(env, stories, total))
            chaos = [asyncio.create_task(self._backend_chaos(backends, fraction))]
            if o.kills:
                chaos.append(asyncio.create_task(self._kill_loop(fleet)))
            try:
                sender = asyncio.create_task(self._send_bad(bad, fraction))
                load_started = time.monotonic()
                await stories.run(plans.youths)
                expect_family_matches(stories.results, plans.families)
                await sender
                load_seconds = time.monotonic() - load_started
                self.t.note("workload sent", seconds=round(load_seconds, 1))
                self.stop_chaos.set()
                await asyncio.gather(*chaos)
                await backends.settle()
                await fleet.ensure_all_running()
                await self._drain(env, stories, bad)
            finally:
                self.stop_chaos.set()
                desk_stop.set()
                for task in (progress, *chaos):
                    task.cancel()
                await asyncio.gather(progress, *chaos, desk_task, return_exceptions=True)
            probes += [
                security.Probe(f"{p.name} (after the restarts)", p.ok, p.detail)
                for p in await security.probe_all(env)
            ]
            queues_after = await self._queue_types(env)
            queue_state = await self._queues(env)
            exit_codes = await fleet.stop_all()
            await self._stop_sink()
            self.t.note("services stopped", exit_codes=dict(Counter(exit_codes.values())))
            report = await verdict.judge(
                verdict.Evidence(
                    env=env,
                    fleet=fleet,
                    partners=self.partners,
                    stories=stories,
                    bad_sent=self.bad_sent,
                    corpus=corpus,
                    probes=probes,
                    queue_state=queue_state,
                    queues_before=queues_before,
                    queues_after=queues_after,
                    exit_codes=exit_codes,
                    backend_restarts=self.backend_restarts,
                    planned_restarts=["rabbitmq"] * o.broker_restart
                    + ["postgresql"] * o.database_restart,
                    replicas=o.replicas,
                    mail_file=self.mail_file,
                )
            )
            report.figures["load_seconds"] = round(load_seconds, 1)
            report.figures["meldingen_planned"] = plans.meldingen
            report.figures["youths"] = len(plans.youths)
            report.figures["families"] = len(plans.families)
            report.figures["family_facts_sent"] = desk.answered
            if isinstance(backends, ClusterChaosBackends):
                answers = (got.at for p in self.partners.values() for got in p.received)
                report.figures["failovers"] = failover_seconds(backends.failovers, answers)
                report.figures["longest_service_outage_seconds"] = longest_outages(
                    fleet.log_files()
                )
                killed = [f for f in backends.failovers if f["backend"] == "rabbitmq"]
                report.check(
                    "the killed broker node was started again and rejoined the cluster",
                    all("rejoined_after_seconds" in f for f in killed),
                    [f.get("rejoin_error") for f in killed if "rejoin_error" in f],
                )
                # 1 is "could not reach the broker, its API or the database".
                report.check(
                    "verwijsindex status answered while the killed node was down",
                    all(f.get("status_while_down") not in (None, 1) for f in killed),
                    [f.get("status_while_down") for f in killed],
                )
            self.report = report
            return self._finish(report, plans.meldingen)
        finally:
            for partner in self.partners.values():
                await partner.close()
            if fleet is not None:
                await fleet.stop_all()
            await self._stop_sink()

    async def _start_sink(self) -> int:
        """The SMTP server the notifiers send to; returns its port."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.sink = await start_module(
            "chaos.smtp_sink",
            "--port",
            str(port),
            "--out",
            str(self.mail_file),
            env={},
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.sink.stdout is not None
        await asyncio.wait_for(self.sink.stdout.readline(), 30)  # "ready"
        return port

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
            try:
                command = await restart()
            except Exception as exc:  # reported as a failed check, the run goes on
                self.backend_restarts.append({"backend": name, "error": str(exc)[:500]})
                self.t.note(f"{name} restart FAILED", error=str(exc)[:200])
                continue
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
                queues = [{"name": "?", "messages": 1, "consumers": 0}]
            busy = sum(
                q["messages"]
                for q in queues
                if q["name"] != REJECTED_QUEUE and not q["name"].endswith(".parked")
            )
            # The management API's consumer counts lag a few seconds behind restarts.
            consuming = all(
                q["consumers"] >= self.o.replicas for q in queues if q["name"] in WORK_QUEUES
            )
            if must <= seen and answered and busy == 0 and consuming:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 3:
                    self.t.note("drained")
                    return
            else:
                quiet_since = None
            await asyncio.sleep(1)
        self.t.note("drain timed out", seconds=self.o.drain_timeout)

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
        for failover in f.get("failovers", []):
            print(f"failover of {failover['backend']}: first answer {failover['seconds']} s after")
        if "longest_service_outage_seconds" in f:
            print(f"longest a service was without a backend: {f['longest_service_outage_seconds']}")
        print(
            f"log lines scanned {f.get('log_lines_scanned')}, database compared for "
            f"{f.get('youths_compared')} youths, parked {f.get('parked')}"
        )
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            detail = "" if check.ok else f"  {json.dumps(check.detail, default=str)[:400]}"
            print(f"  [{mark}] {check.name}{detail}")
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
        where = "not recorded"
        if self.o.record:
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            path = RESULTS_DIR / f"{self.run_id}.json"
            path.write_text(json.dumps(document, indent=2, default=str) + "\n")
            where = str(path)
        print(f"{'PASSED' if report.ok else 'FAILED'} in {document['seconds']} s; results: {where}")
        return 0 if report.ok else 1


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
