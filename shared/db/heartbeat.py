"""Replicas report themselves, so operators see what runs and whether it is ready."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

INTERVAL_SECONDS = 5.0
STALE_AFTER_SECONDS = 3 * INTERVAL_SECONDS
# A replica that went silent without leaving counts as *gone* for this long, then the
# metric forgets it (its row stays for `verwijsindex status`): a crashed replica that
# its supervisor replaced is worth an alert, not one that never resolves.
GONE_WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Instance:
    instance_id: str
    service: str
    host: str
    pid: int
    started_at: datetime

    @classmethod
    def new(cls, service: str) -> Instance:
        return cls(
            instance_id=f"{service}-{uuid.uuid4().hex[:12]}",
            service=service,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=datetime.now(UTC),
        )


async def beat(
    pool: asyncpg.Pool[Any], instance: Instance, *, ready: bool, detail: dict[str, bool]
) -> None:
    await pool.execute(
        """INSERT INTO service_instance
               (instance_id, service, host, pid, started_at, last_seen, ready, detail)
           VALUES ($1, $2, $3, $4, $5, now(), $6, $7)
           ON CONFLICT (instance_id) DO UPDATE
           SET last_seen = now(), ready = EXCLUDED.ready, detail = EXCLUDED.detail""",
        instance.instance_id,
        instance.service,
        instance.host,
        instance.pid,
        instance.started_at,
        ready,
        detail,
    )


async def leave(pool: asyncpg.Pool[Any], instance: Instance) -> None:
    await pool.execute("DELETE FROM service_instance WHERE instance_id = $1", instance.instance_id)


async def census(pool: asyncpg.Pool[Any]) -> dict[str, dict[str, int]]:
    """Per service: replicas `live` (reported lately), `ready` (of those), and `gone`
    (silent for longer than STALE_AFTER_SECONDS, within GONE_WINDOW_SECONDS)."""
    rows = await pool.fetch(
        """SELECT service,
                  count(*) FILTER (WHERE last_seen > now() - make_interval(secs => $1))
                      AS live,
                  count(*) FILTER (WHERE last_seen > now() - make_interval(secs => $1)
                                     AND ready) AS ready,
                  count(*) FILTER (WHERE last_seen <= now() - make_interval(secs => $1)
                                     AND last_seen > now() - make_interval(secs => $2))
                      AS gone
           FROM service_instance GROUP BY service""",
        STALE_AFTER_SECONDS,
        float(GONE_WINDOW_SECONDS),
    )
    return {r["service"]: {k: int(r[k]) for k in ("live", "ready", "gone")} for r in rows}
