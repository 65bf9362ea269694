"""`verwijsindex status`: is all well, and if not, where is it stuck?

It only reads figures (the broker's, the database's); it never takes a message from a
queue, so looking costs no message any of its delivery budget.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from cli.common import run, settings
from cli.output import emit_json, table
from shared.amqp.connection import connect_broker, vhost_of
from shared.amqp.management import Management, ManagementError
from shared.amqp.queue_age import LONG, SHORT, held_for
from shared.amqp.replicas import replication, under_replicated
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES
from shared.db.heartbeat import STALE_AFTER_SECONDS
from shared.db.pool import connect as connect_db
from shared.settings import Settings

# Every one of these must have a live replica; retention has no queue to show it.
SERVICES = ("ingest", "matcher", "notifier", "retention")


class Attention(enum.IntFlag):
    """Bits of the exit code. 1 and 2 are click's (an error such as an unreachable
    broker or database, a usage error), so these start at 4."""

    PARKED = 4
    REJECTED = 8
    NO_CONSUMERS = 16
    SERVICE_DOWN = 32
    REPLICAS = 64


EXIT_CODES_HELP = """\b
Exit code: 0 when all is well; 1 when the broker, its management API or the
database cannot be reached; 2 for a usage error; otherwise the sum of
   4  messages are parked
   8  messages are in vi.rejected
  16  a work queue has no consumer
  32  a service has no live replica (ingest, matcher, notifier, retention)
  64  a quorum queue has fewer replicas than the broker cluster has nodes,
      or a replica offline"""


async def _queue_rows(management: Management, vhost: str, s: Settings) -> list[dict[str, Any]]:
    figures = await management.queues_with_lengths(vhost, seconds=SHORT[0], every=SHORT[1])
    connection = await connect_broker(s, "verwijsindex-status")
    rows = []
    try:
        for q in sorted(figures, key=lambda q: q["name"]):
            name = q["name"]
            if ".retry." in name:
                continue
            # The management API's figures lag by seconds; a passive declare is exact
            # for ready messages and consumers.
            async with connection.channel() as channel:
                declared = (await channel.declare_queue(name, passive=True)).declaration_result
            ready, consumers = declared.message_count or 0, declared.consumer_count or 0
            unacked = int(q.get("messages_unacknowledged", 0))
            held = held_for(q, time.time()) if ready + unacked else None
            if held is not None and held.at_least:
                longer = await management.queue_with_lengths(
                    vhost, name, seconds=LONG[0], every=LONG[1]
                )
                held = held_for(longer, time.time()) or held
            rows.append(
                {
                    "queue": name,
                    "ready": ready,
                    "unacked": unacked,
                    "consumers": consumers,
                    "oldest_seconds": None if held is None else round(held.seconds, 1),
                    "oldest_at_least": held is not None and held.at_least,
                }
            )
    finally:
        await connection.close()
    return rows


async def _replication_rows(management: Management, vhost: str) -> list[dict[str, Any]]:
    """Each quorum queue's leader, members and online members (retry queues left out)."""
    rows = []
    for figures in await management.queues(vhost):
        replicas = replication(figures)
        if replicas is not None and ".retry." not in replicas.queue:
            rows.append(replicas.as_row())
    return sorted(rows, key=lambda row: row["queue"])


async def gather_status() -> dict[str, Any]:
    s = settings()
    management = Management.for_settings(s)
    rows = await _queue_rows(management, vhost_of(s.amqp_url), s)
    cluster_nodes = await management.cluster_nodes()
    replicas = await _replication_rows(management, vhost_of(s.amqp_url))
    conn = await connect_db(s.database_url)
    try:
        instances = await conn.fetch(
            """SELECT service, instance_id, host, pid, ready, detail,
                      extract(epoch FROM now() - last_seen) AS silent_for
               FROM service_instance ORDER BY service, instance_id"""
        )
        outbox = await conn.fetchrow(
            """SELECT count(*) AS rows,
                      extract(epoch FROM now() - min(created_at)) AS oldest_seconds
               FROM outbox"""
        )
    finally:
        await conn.close()
    services: dict[str, dict[str, int]] = {}
    for inst in instances:
        alive = float(inst["silent_for"]) < STALE_AFTER_SECONDS
        entry = services.setdefault(inst["service"], {"replicas": 0, "ready": 0, "stale": 0})
        if alive:
            entry["replicas"] += 1
            entry["ready"] += int(bool(inst["ready"]))
        else:
            entry["stale"] += 1
    assert outbox is not None
    parked = {r["queue"]: r["ready"] + r["unacked"] for r in rows if r["queue"].endswith(".parked")}
    rejected = next((r["ready"] + r["unacked"] for r in rows if r["queue"] == REJECTED_QUEUE), 0)
    doc: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "queues": rows,
        "parked": parked,
        "rejected": rejected,
        "outbox": {
            "rows": int(outbox["rows"]),
            "oldest_seconds": float(outbox["oldest_seconds"] or 0.0),
        },
        "services": services,
        "work_queues": sorted(WORK_QUEUES),
        "cluster_nodes": cluster_nodes,
        "replicas": replicas,
    }
    findings = attention(doc)
    doc["attention"] = [{"code": int(flag), "problem": text} for flag, text in findings]
    doc["exit_code"] = _exit_code(findings)
    return doc


def attention(doc: Mapping[str, Any]) -> list[tuple[Attention, str]]:
    """What needs an operator, each with the bit it sets in the exit code."""
    found: list[tuple[Attention, str]] = []
    for queue, count in sorted(doc["parked"].items()):
        if count:
            found.append(
                (Attention.PARKED, f"{count} parked in {queue}: `verwijsindex parked list`")
            )
    if doc["rejected"]:
        found.append(
            (
                Attention.REJECTED,
                f"{doc['rejected']} in {REJECTED_QUEUE}: `verwijsindex rejected list`",
            )
        )
    for q in doc["queues"]:
        if q["queue"] in WORK_QUEUES and not q["consumers"]:
            found.append((Attention.NO_CONSUMERS, f"{q['queue']} has no consumer"))
    for service in SERVICES:
        if not doc["services"].get(service, {}).get("replicas"):
            found.append((Attention.SERVICE_DOWN, f"no live replica of {service} reports in"))
    for problem in under_replicated(doc.get("replicas", []), doc.get("cluster_nodes", [])):
        found.append((Attention.REPLICAS, problem))
    return found


def _exit_code(findings: list[tuple[Attention, str]]) -> int:
    code = 0
    for flag, _ in findings:
        code |= flag
    return code


def _age(q: Mapping[str, Any]) -> str | None:
    if q["oldest_seconds"] is None:
        return None
    return (">" if q["oldest_at_least"] else "") + f"{q['oldest_seconds']:.0f}"


def _render(doc: dict[str, Any]) -> str:
    parts = [
        "Queues",
        table(
            ["queue", "ready", "unacked", "consumers", "oldest (s)"],
            [
                [q["queue"], q["ready"], q["unacked"], q["consumers"], _age(q)]
                for q in doc["queues"]
            ],
        ),
        "",
        f"Rejected (vi.rejected): {doc['rejected']}",
        "Parked: " + (", ".join(f"{k} {v}" for k, v in doc["parked"].items() if v) or "none"),
        f"Outbox: {doc['outbox']['rows']} rows waiting"
        + (f", oldest {doc['outbox']['oldest_seconds']:.1f} s" if doc["outbox"]["rows"] else ""),
        "",
        "Services",
        table(
            ["service", "replicas", "ready", "stale"],
            [
                [name, v["replicas"], v["ready"], v["stale"]]
                for name, v in sorted(doc["services"].items())
            ],
        )
        if doc["services"]
        else "  no service has reported in (are they running?)",
        "",
    ]
    if len(doc["cluster_nodes"]) > 1:
        parts += [
            f"Replicas ({len(doc['cluster_nodes'])} broker nodes)",
            table(
                ["queue", "leader", "members", "online"],
                [
                    [r["queue"], r["leader"], len(r["members"]), len(r["online"])]
                    for r in doc["replicas"]
                ],
            ),
            "",
        ]
    if doc["attention"]:
        parts.append(f"Needs attention (exit code {doc['exit_code']}):")
        parts.extend(f"  {a['problem']}" for a in doc["attention"])
    else:
        parts.append("All well.")
    return "\n".join(parts)


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Queue depths, consumers, unacked and the age of the oldest message; rejected
    and parked counts; outbox backlog; each service's replicas and readiness; and
    what needs attention, also in the exit code (below), for scripts and monitoring.
    On a broker cluster also each quorum queue's leader and replicas.

    The oldest message's age is how long the queue has not been empty, from the
    broker's length history (5 s precision; ">" when it was never empty in the last
    day). No message is read for it."""
    try:
        doc = run(gather_status())
    except ManagementError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        emit_json(doc)
    else:
        click.echo(_render(doc))
    click.get_current_context().exit(doc["exit_code"])
