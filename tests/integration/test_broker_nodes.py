"""A service given several broker nodes connects to the first that answers and moves
to the next when its node goes, consumers and publisher included.

The two "nodes" are switchable TCP proxies in front of the real broker: one node
failing is its proxy refusing and cutting connections. (Real clustered nodes, and a
node SIGKILLed under load, are in tests/cluster/.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from shared.amqp.connection import MultiNodeConnection
from shared.partner_client import PartnerClient
from shared.service import Runtime
from testing.ports import free_port
from testing.proxy import SwitchableProxy, via
from tests.conftest import System
from tests.support import RegionUnderTest, register_body


@pytest.fixture
async def two_nodes(test_region: RegionUnderTest) -> AsyncIterator[list[SwitchableProxy]]:
    port = urlsplit(test_region.settings.amqp_url).port or 5672
    nodes = [SwitchableProxy(port), SwitchableProxy(port)]
    for node in nodes:
        await node.on()
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.off()


def _node_list(region: RegionUnderTest, *ports: int) -> RegionUnderTest:
    url = region.settings.amqp_url
    return region.with_settings(amqp_url=",".join(via(url, port) for port in ports))


async def _ingest_answers(partner: PartnerClient, ref: str) -> None:
    """Ingest answers an invalid melding itself: consumed, then published."""
    message_id = await partner.send(register_body(ref, bsn="123456789"))
    receipt = await partner.receipt_for(message_id, timeout=30)
    assert receipt.body["status"] == "rejected"


def _connected_port(runtime: Runtime) -> int | None:
    assert isinstance(runtime.connection, MultiNodeConnection)
    return urlsplit(str(runtime.connection.url)).port


async def test_a_node_that_does_not_answer_is_skipped_at_start(
    test_region: RegionUnderTest,
    two_nodes: list[SwitchableProxy],
    system: System,
    partners: dict[str, PartnerClient],
) -> None:
    dead_port = free_port()  # nothing listens here
    region = _node_list(test_region, dead_port, two_nodes[1].port)
    ingest = await system.start("ingest", settings=region.settings)
    assert _connected_port(ingest) == two_nodes[1].port
    await _ingest_answers(partners["school"], "N-1")


async def test_when_its_node_fails_a_service_moves_to_the_next_and_keeps_working(
    test_region: RegionUnderTest,
    two_nodes: list[SwitchableProxy],
    system: System,
    partners: dict[str, PartnerClient],
) -> None:
    first, second = two_nodes
    region = _node_list(test_region, first.port, second.port)
    ingest = await system.start("ingest", settings=region.settings)
    assert _connected_port(ingest) == first.port
    await _ingest_answers(partners["school"], "N-1")

    await first.off()

    await _ingest_answers(partners["school"], "N-2")
    assert _connected_port(ingest) == second.port
    assert all([await consumer.is_consuming() for consumer in ingest.consumers])


async def test_a_partner_client_given_several_nodes_moves_to_the_next(
    test_region: RegionUnderTest, two_nodes: list[SwitchableProxy], system: System
) -> None:
    first, second = two_nodes
    await system.start("ingest")
    url = test_region.partner_url("school")
    nodes = ",".join(via(url, port) for port in (free_port(), first.port, second.port))
    school = test_region.region.partners_by_id["school"]
    client = PartnerClient(nodes, school.id, school.own_broker_user)
    await client.start()  # the first node does not answer: skipped
    try:
        await _ingest_answers(client, "N-1")
        await first.off()
        # Its mailbox is read again on the next node, and it publishes there.
        await _ingest_answers(client, "N-2")
    finally:
        await client.close()
