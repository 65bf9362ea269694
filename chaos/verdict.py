"""The verdict of a run: every check and figure, from what the run collected."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aio_pika

from chaos import hostile, logscan, security, smtp_sink, verify
from chaos.environment import Environment
from chaos.fleet import Fleet
from chaos.hostile import BadMessage
from chaos.partner import Partner
from chaos.workload import Stories
from shared.amqp.connection import connect
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES, parked_queue
from shared.db.pool import connect as connect_db


@dataclass
class Evidence:
    """Everything the run collected for the verdict."""

    env: Environment
    fleet: Fleet
    partners: dict[str, Partner]
    stories: Stories
    bad_sent: list[BadMessage]
    corpus: hostile.Corpus
    probes: list[security.Probe]
    queue_state: list[dict[str, Any]]
    queues_before: dict[str, str]
    queues_after: dict[str, str]
    exit_codes: dict[str, int | None]
    backend_restarts: list[dict[str, Any]]
    planned_restarts: list[str]
    replicas: int
    mail_file: Path


async def read_queue(env: Environment, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await connect(env.service_amqp_url, "chaos-verdict")
    out = []
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(name, ensure=False)
        while (message := await queue.get(no_ack=True, fail=False)) is not None:
            out.append(message)
    finally:
        await connection.close()
    return out


async def judge(e: Evidence) -> verify.Report:
    env, fleet, stories, corpus, probes = e.env, e.fleet, e.stories, e.corpus, e.probes
    queue_state, queues_before, queues_after = e.queue_state, e.queues_before, e.queues_after
    exit_codes = e.exit_codes
    report = verify.Report()
    partners = list(e.partners.values())
    rejected = await read_queue(env, REJECTED_QUEUE)
    rejected_ids = Counter(m.message_id or "" for m in rejected)
    parked: list[dict[str, Any]] = []
    for work_queue in WORK_QUEUES:
        for message in await read_queue(env, parked_queue(work_queue)):
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
        report, e.partners, stories.sent, e.bad_sent, stories.results, rejected_ids
    )
    verify.check_notices(report, partners, stories.results)
    conn = await connect_db(env.database_url)
    try:
        await verify.check_database(report, conn, stories.results)
        sent_rows = {r["message_id"] for r in await conn.fetch("SELECT message_id FROM sent_email")}
        inbox = await conn.fetchval("SELECT count(*) FROM inbox")
    finally:
        await conn.close()
    texts = verify.check_email(report, smtp_sink.read_messages(e.mail_file), sent_rows, partners)
    expected_inbox = len({(s.partner, s.message_id) for s in stories.sent}) + len(
        {
            (b.partner, b.message_id)
            for b in e.bad_sent
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
    report.check("no queue stalls: every work, retry and partner queue empty", not stalled, stalled)
    report.check("nothing parked", not parked, parked[:20])
    report.figures["parked"] = len(parked)
    consumers = {q["name"]: q["consumers"] for q in queue_state}
    want = {name: e.replicas for name in WORK_QUEUES}
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
        Counter(_start_failure_reason(e.last_line) for e in failed_starts)
    )
    report.check(
        "no service process exited at start-up (a backend that is down is waited for)",
        not failed_starts,
        [asdict(e) for e in failed_starts[:10]],
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
        {k for k, _ in logscan.find_secrets(planted, secrets)} == {"bsn", "birth_date", "surname"},
    )
    # person.lookup carries a BSN by contract (§8), to the register only (checked
    # with the notices); everything else a partner receives must not.
    notices = [
        (f"{p.id}:{g.type}", json.dumps(g.body, ensure_ascii=False))
        for p in partners
        for g in p.received
        if g.type != "person.lookup"
    ]
    leaks = scanned.hits + logscan.scan_texts(notices, secrets) + logscan.scan_texts(texts, secrets)
    report.figures["log_lines_scanned"] = scanned.lines
    report.figures["log_lines_not_json"] = scanned.non_json_lines
    report.check(
        "every service log line is one JSON object",
        scanned.non_json_lines == 0,
        scanned.non_json_samples,
    )
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
    f["backend_restarts"] = e.backend_restarts
    planned = e.planned_restarts
    done = [r["backend"] for r in e.backend_restarts if "error" not in r]
    report.check(
        "RabbitMQ and PostgreSQL each restarted once during the workload",
        done == planned,
        e.backend_restarts,
    )
    f["partner_resends"] = sum(p.stats.resends for p in partners)
    f["partner_send_errors"] = {p.id: p.stats.errors for p in partners if p.stats.errors}
    f["partner_reconnects"] = {p.id: p.reconnects for p in partners}
    f["in_vi_rejected_total"] = len(rejected)
    return report


def _start_failure_reason(last_line: str) -> str:
    """The exception class from a `startup_failed` line (or a bare traceback's end)."""
    try:
        record = json.loads(last_line)
    except ValueError:
        return last_line.split(":")[0][-80:]
    return str(record.get("error") or record.get("event")).split(":")[0][:80]
