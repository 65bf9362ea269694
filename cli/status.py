"""`verwijsindex status`: is all well, and if not, where is it stuck?"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from cli.common import run, settings
from cli.output import emit_json, table
from shared.amqp.connection import connect_broker, vhost_of
from shared.amqp.inspect import hold, oldest_age_seconds
from shared.amqp.management import Management
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES
from shared.db.heartbeat import STALE_AFTER_SECONDS
from shared.db.pool import connect as connect_db

# Peeking gives a message back to its queue; on a work queue that counts towards the
# delivery limit, so only queues without one are peeked for their oldest message.
_PEEKABLE_SUFFIXES = (".parked",)


def _peekable(name: str) -> bool:
    return (
        name == REJECTED_QUEUE or name.startswith("partner.") or name.endswith(_PEEKABLE_SUFFIXES)
    )


async def gather_status() -> dict[str, Any]:
    s = settings()
    queues = await Management.for_settings(s).queues(vhost_of(s.amqp_url))
    connection = await connect_broker(s, "verwijsindex-status")
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
        lags: dict[str, float] = {}
        rows = []
        for q in sorted(queues, key=lambda q: q["name"]):
            name = q["name"]
            if ".retry." in name:
                continue
            # The management API's figures lag by seconds; a passive declare is exact
            # for ready messages and consumers.
            async with connection.channel() as channel:
                declared = (await channel.declare_queue(name, passive=True)).declaration_result
            ready, consumers = declared.message_count or 0, declared.consumer_count or 0
            unacked = int(q.get("messages_unacknowledged", 0))
            oldest = None
            if ready + unacked and _peekable(name):
                channel, held = await hold(connection, name, limit=1)
                oldest = oldest_age_seconds(held)
                await channel.close()
            rows.append(
                {
                    "queue": name,
                    "ready": ready,
                    "unacked": unacked,
                    "consumers": consumers,
                    "oldest_seconds": None if oldest is None else round(oldest, 1),
                }
            )
            lags[name] = oldest or 0.0
    finally:
        await conn.close()
        await connection.close()
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
    return {
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
    }


def _render(doc: dict[str, Any]) -> str:
    parts = [
        "Queues",
        table(
            ["queue", "ready", "unacked", "consumers", "oldest (s)"],
            [
                [q["queue"], q["ready"], q["unacked"], q["consumers"], q["oldest_seconds"]]
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
    ]
    return "\n".join(parts)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Queue depths, consumers, unacked and oldest message; rejected and parked
    counts; outbox backlog; each service's replicas and readiness."""
    doc = run(gather_status())
    if as_json:
        emit_json(doc)
    else:
        click.echo(_render(doc))
