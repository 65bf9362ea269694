"""The broker nodes `VI_AMQP_URL` names, and which one to try next.

`VI_AMQP_URL` may list several nodes of one cluster, comma-separated
(`amqps://vi@node1:5671,amqps://vi@node2:5671`). A client connects to the first that
answers and, when its node fails, moves on to the next one, round the list. No I/O here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A comma starts a new node only where a URL follows: a comma inside a password or a
# query string stays part of its URL.
_NODE_SEPARATOR = re.compile(r"\s*,\s*(?=[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


class BrokerUrlError(ValueError):
    """A `VI_AMQP_URL` that cannot be used; the message says what to change."""


def _without_password(url: str) -> str:
    """`url` as it may be shown in an error: the password left out."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def split_urls(value: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list (`VI_AMQP_URL`, `VI_MANAGEMENT_URL`), in the
    order given; a single URL is a list of one."""
    return tuple(part.strip() for part in _NODE_SEPARATOR.split(value.strip()))


def split_nodes(amqp_url: str) -> tuple[str, ...]:
    """Every node URL in `amqp_url`, in the order given (one for a single URL)."""
    nodes = split_urls(amqp_url)
    for node in nodes:
        if not _is_node_url(node):
            raise BrokerUrlError(
                f"VI_AMQP_URL is not a valid broker URL: {_without_password(node)!r} is not "
                "an amqp:// or amqps:// URL with a host; the form is "
                "amqp://USER:PASSWORD@HOST[:PORT]/[VHOST], several nodes comma-separated "
                "(amqps://user@node1:5671,amqps://user@node2:5671)"
            )
    schemes = {urlsplit(node).scheme.lower() for node in nodes}
    if len(schemes) > 1:
        raise BrokerUrlError(
            "VI_AMQP_URL mixes amqp:// and amqps:// nodes; use one scheme for every node"
        )
    return nodes


def _is_node_url(node: str) -> bool:
    parts = urlsplit(node)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme.lower() in ("amqp", "amqps") and bool(host) and "," not in host


def node_of(url: str) -> str:
    """A node URL's `host:port`, as a log line names the node (no login in it)."""
    parts = urlsplit(url)
    default = 5671 if parts.scheme.lower() == "amqps" else 5672
    return f"{parts.hostname}:{parts.port or default}"


def first_node(amqp_url: str) -> str:
    """The first node's URL: the one whose login, virtual host and options stand for
    all (the nodes of one cluster share users and virtual hosts)."""
    return split_nodes(amqp_url)[0]


class NodeRotation:
    """The node in use, and the one to move to when it fails: round the list, so that
    a node that comes back is tried again after the others."""

    def __init__(self, nodes: tuple[str, ...], start: int = 0) -> None:
        if not nodes:
            raise BrokerUrlError("no broker node to connect to")
        self.nodes = nodes
        self._index = start % len(nodes)

    @property
    def current(self) -> str:
        return self.nodes[self._index]

    def advance(self) -> str:
        """Move on to the next node and return it (the same one when there is one)."""
        self._index = (self._index + 1) % len(self.nodes)
        return self.current
