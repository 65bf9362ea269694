"""What `verwijsindex status` flags, and the exit code it gives for it."""

from __future__ import annotations

from typing import Any

import pytest

from cli.status import SERVICES, Attention, attention
from shared.amqp.replicas import Replication, replication

ALL_UP = {name: {"replicas": 1, "ready": 1, "stale": 0} for name in SERVICES}


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "queues": [
            {"queue": "vi.ingest", "consumers": 2},
            {"queue": "vi.matcher", "consumers": 1},
            {"queue": "vi.matcher.parked", "consumers": 0},
            {"queue": "partner.school", "consumers": 0},
        ],
        "parked": {"vi.matcher.parked": 0},
        "rejected": 0,
        "services": ALL_UP,
    }
    return {**doc, **changes}


def _flags(doc: dict[str, Any]) -> set[Attention]:
    return {flag for flag, _ in attention(doc)}


def test_all_well_needs_nothing() -> None:
    # Holding queues and partner mailboxes have no consumers by design.
    assert attention(_doc()) == []


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"parked": {"vi.matcher.parked": 2}}, Attention.PARKED),
        ({"rejected": 1}, Attention.REJECTED),
        ({"queues": [{"queue": "vi.matcher", "consumers": 0}]}, Attention.NO_CONSUMERS),
        (
            {"services": {**ALL_UP, "retention": {"replicas": 0, "ready": 0, "stale": 1}}},
            Attention.SERVICE_DOWN,
        ),
        ({"services": {}}, Attention.SERVICE_DOWN),
    ],
)
def test_each_condition_sets_its_own_bit(changes: dict[str, Any], flag: Attention) -> None:
    assert _flags(_doc(**changes)) == {flag}


def test_the_bits_do_not_collide_with_clicks_own_exit_codes() -> None:
    # 1: an error (e.g. broker unreachable), 2: a usage error.
    assert all(flag & 0b11 == 0 for flag in Attention)
    combined = 0
    for flag in Attention:
        assert combined & flag == 0
        combined |= flag


NODES = ["rabbit@a", "rabbit@b", "rabbit@c"]


def _replicas(members: list[str], online: list[str] | None = None) -> dict[str, Any]:
    return {
        "queue": "vi.matcher",
        "leader": members[0],
        "members": members,
        "online": members if online is None else online,
    }


def test_a_queue_with_a_replica_on_every_node_needs_nothing() -> None:
    assert attention(_doc(cluster_nodes=NODES, replicas=[_replicas(NODES)])) == []


def test_a_queue_with_fewer_replicas_than_nodes_says_how_to_grow_it() -> None:
    found = attention(_doc(cluster_nodes=NODES, replicas=[_replicas(NODES[:1])]))
    assert [flag for flag, _ in found] == [Attention.REPLICAS]
    assert "1 replicas on 3 nodes" in found[0][1]
    assert "rabbit@b, rabbit@c" in found[0][1]
    assert "rabbitmq-queues grow" in found[0][1]


def test_a_replica_offline_is_flagged() -> None:
    found = attention(_doc(cluster_nodes=NODES, replicas=[_replicas(NODES, NODES[:2])]))
    assert [flag for flag, _ in found] == [Attention.REPLICAS]
    assert "rabbit@c is offline" in found[0][1]


def test_replication_is_read_from_quorum_queues_only() -> None:
    figures = {
        "name": "vi.ingest",
        "type": "quorum",
        "leader": "rabbit@b",
        "members": ["rabbit@c", "rabbit@b"],
        "online": ["rabbit@b"],
    }
    assert replication(figures) == Replication(
        "vi.ingest", "rabbit@b", ("rabbit@b", "rabbit@c"), ("rabbit@b",)
    )
    assert replication({"name": "amq.gen-1", "type": "classic"}) is None
