"""VI_AMQP_URL with several broker nodes: parsing, and the order nodes are tried in."""

from __future__ import annotations

import pytest

from shared.amqp.connection import vhost_of
from shared.amqp.nodes import BrokerUrlError, NodeRotation, first_node, split_nodes
from shared.settings import Settings


def test_one_url_is_one_node() -> None:
    assert split_nodes("amqp://guest:guest@127.0.0.1:5672/") == (
        "amqp://guest:guest@127.0.0.1:5672/",
    )


def test_nodes_are_split_on_commas_in_order() -> None:
    url = "amqps://vi@node1:5671/region, amqps://vi@node2:5671/region,amqps://vi@node3:5671/region"
    assert split_nodes(url) == (
        "amqps://vi@node1:5671/region",
        "amqps://vi@node2:5671/region",
        "amqps://vi@node3:5671/region",
    )


def test_a_comma_inside_a_password_or_query_stays_in_its_url() -> None:
    url = "amqp://vi:se,cret@node1:5672/?heartbeat=30,amqp://vi:se,cret@node2:5672/"
    assert split_nodes(url) == (
        "amqp://vi:se,cret@node1:5672/?heartbeat=30",
        "amqp://vi:se,cret@node2:5672/",
    )


@pytest.mark.parametrize(
    "url",
    ["node1:5672,node2:5672", "amqp://vi@node1,http://node2", "amqp://vi@node1:5672,", ""],
)
def test_a_node_that_is_not_an_amqp_url_is_refused(url: str) -> None:
    with pytest.raises(BrokerUrlError, match="amqp:// or amqps://"):
        split_nodes(url)


def test_mixing_tls_and_plain_nodes_is_refused() -> None:
    with pytest.raises(BrokerUrlError, match="one scheme"):
        split_nodes("amqps://vi@node1:5671,amqp://vi@node2:5672")


def test_the_first_node_names_login_and_vhost_for_all() -> None:
    url = "amqp://vi:pw@node1:5672/region,amqp://vi:pw@node2:5672/region"
    assert first_node(url) == "amqp://vi:pw@node1:5672/region"
    assert vhost_of(url) == "region"
    assert Settings(amqp_url=url).service_broker_user == "vi"


def test_rotation_starts_where_asked_and_goes_round_the_list() -> None:
    rotation = NodeRotation(("a", "b", "c"), start=1)
    assert rotation.current == "b"
    assert [rotation.advance() for _ in range(4)] == ["c", "a", "b", "c"]


def test_rotation_with_one_node_stays_on_it() -> None:
    rotation = NodeRotation(("only",))
    assert rotation.advance() == "only"
    assert rotation.current == "only"


def test_rotation_needs_a_node() -> None:
    with pytest.raises(BrokerUrlError):
        NodeRotation(())
