"""How well each quorum queue is replicated over the broker cluster's nodes, from the
management API's queue figures (`leader`, `members`, `online`). No I/O here.

A quorum queue gets its members when it is declared: declared before every node had
joined, it has fewer than the cluster, and a node added later gets none. Operators grow
them with `rabbitmq-queues grow NODE all` (see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GROW_HINT = "rabbitmq-queues grow <node> all --vhost-pattern <vhost>"


@dataclass(frozen=True)
class Replication:
    queue: str
    leader: str | None
    members: tuple[str, ...]
    online: tuple[str, ...]

    def as_row(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "leader": self.leader,
            "members": list(self.members),
            "online": list(self.online),
        }


def replication(figures: Mapping[str, Any]) -> Replication | None:
    """The queue's replication, or None when it is not a quorum queue."""
    if figures.get("type") != "quorum" or "members" not in figures:
        return None
    return Replication(
        queue=str(figures["name"]),
        leader=figures.get("leader"),
        members=tuple(sorted(figures.get("members") or ())),
        online=tuple(sorted(figures.get("online") or ())),
    )


def under_replicated(rows: Iterable[Mapping[str, Any]], cluster_nodes: list[str]) -> list[str]:
    """One line per queue that has fewer replicas than the cluster has nodes, or a
    replica offline, saying what to do."""
    problems = []
    for row in rows:
        members, online = row["members"], row["online"]
        missing = sorted(set(cluster_nodes) - set(members))
        if missing:
            problems.append(
                f"{row['queue']} has {len(members)} replicas on {len(cluster_nodes)} nodes "
                f"(none on {', '.join(missing)}): `{GROW_HINT}`"
            )
        elif len(online) < len(members):
            down = sorted(set(members) - set(online))
            problems.append(
                f"{row['queue']}: the replica on {', '.join(down)} is offline "
                "(its node is down or still catching up)"
            )
    return problems
