"""A small client for the RabbitMQ management HTTP API (users, permissions, queue
figures), on one node or on whichever of a cluster's nodes answers. Blocking urllib
calls run in a thread; the API is used by operators' tools, the demo and the tests,
never on a message's path."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from shared.amqp.nodes import split_urls
from shared.amqp.tls import client_context
from shared.region.model import Login, RegionConfig
from shared.settings import Settings


class _Unreachable(Exception):
    """A node's API did not answer at all (refused, timed out): try another node."""


class _TimedOut(_Unreachable):
    """A node's API took longer than the wait to answer."""


class ManagementError(RuntimeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the API answered


@dataclass(frozen=True)
class _Node:
    """One node's management API: its base URL and the login to send it."""

    base: str
    authorization: str

    @classmethod
    def of(cls, url: str) -> _Node:
        parts = urlsplit(url)
        creds = f"{parts.username or 'guest'}:{parts.password or 'guest'}".encode()
        return cls(
            f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api",
            "Basic " + base64.b64encode(creds).decode(),
        )


class Management:
    # Seconds to wait for an answer. A read that timed out is asked once more with the
    # longer wait: a broker under heavy load can take more than 10 s to list its
    # queues, and an operator's `status` should not then report it unreachable. A
    # write is not repeated (it may have been applied).
    TIMEOUT_SECONDS = 10.0
    READ_RETRY_TIMEOUT_SECONDS = 30.0

    def __init__(self, url: str, *, ca_file: Path | None = None) -> None:
        """`url`: one node's API, or the APIs of several nodes of one cluster,
        comma-separated (as VI_MANAGEMENT_URL may list them): a call goes to the node
        that answered last, and to the next one when that node cannot be reached.
        `ca_file`: the CA to check an https:// API's certificate against (the system's
        trust store when None), usually the broker's, VI_AMQP_CA_FILE."""
        self._nodes = tuple(_Node.of(node) for node in split_urls(url))
        self._current = 0
        self._https = any(node.base.startswith("https:") for node in self._nodes)
        self._ca_file = ca_file

    @classmethod
    def for_settings(cls, settings: Settings) -> Management:
        """The API at VI_MANAGEMENT_URL, an https:// one checked against VI_AMQP_CA_FILE."""
        return cls(settings.management_url, ca_file=settings.amqp_ca_file)

    @cached_property
    def _tls(self) -> ssl.SSLContext | None:
        # Made on first use, inside the caller's error handling.
        return client_context(self._ca_file) if self._https else None

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        unreachable: list[str] = []
        for step in range(len(self._nodes)):
            index = (self._current + step) % len(self._nodes)
            try:
                result = self._call_node_patiently(self._nodes[index], method, path, body)
            except _Unreachable as exc:
                unreachable.append(f"{self._nodes[index].base} ({exc})")
                continue
            self._current = index
            return result
        raise ManagementError(
            f"cannot reach the RabbitMQ management API at {'; '.join(unreachable)}: is "
            "the management plugin enabled (rabbitmq-plugins enable rabbitmq_management), "
            "and does VI_MANAGEMENT_URL point at it?"
        )

    def _call_node_patiently(self, node: _Node, method: str, path: str, body: Any) -> Any:
        try:
            return self._call_node(node, method, path, body, self.TIMEOUT_SECONDS)
        except _TimedOut:
            if method != "GET":
                raise
            return self._call_node(node, method, path, body, self.READ_RETRY_TIMEOUT_SECONDS)

    def _call_node(self, node: _Node, method: str, path: str, body: Any, timeout: float) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = Request(  # noqa: S310 - the URL is the operator's own setting
            node.base + path,
            data=data,
            method=method,
            headers={"Authorization": node.authorization, "Content-Type": "application/json"},
        )
        try:
            with urlopen(request, timeout=timeout, context=self._tls) as response:  # noqa: S310
                raw = response.read()
        except HTTPError as exc:
            if method == "DELETE" and exc.code == 404:
                return None
            if exc.code == 401:
                raise ManagementError(
                    "the RabbitMQ management API refused the login (HTTP 401): "
                    "check the user and password in VI_MANAGEMENT_URL"
                ) from None
            raise ManagementError(
                f"RabbitMQ management API {method} {path}: HTTP {exc.code} {exc.reason}",
                exc.code,
            ) from None
        except OSError as exc:
            reason = getattr(exc, "reason", exc)  # URLError wraps it
            if isinstance(reason, TimeoutError):
                raise _TimedOut(reason) from None
            raise _Unreachable(reason) from None
        return json.loads(raw) if raw else None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._call, method, path, body)

    async def put_vhost(self, vhost: str) -> None:
        await self.call("PUT", f"/vhosts/{quote(vhost, safe='')}", {})

    async def delete_vhost(self, vhost: str) -> None:
        await self.call("DELETE", f"/vhosts/{quote(vhost, safe='')}")

    async def put_user(self, name: str, password: str, tags: str = "") -> None:
        await self.call(
            "PUT", f"/users/{quote(name, safe='')}", {"password": password, "tags": tags}
        )

    async def put_user_without_password(self, name: str, tags: str = "") -> None:
        """A user no password logs in as: it logs in by client certificate (EXTERNAL).
        An existing user's password is cleared."""
        await self.call(
            "PUT", f"/users/{quote(name, safe='')}", {"password_hash": "", "tags": tags}
        )

    async def user_exists(self, name: str) -> bool:
        try:
            await self.call("GET", f"/users/{quote(name, safe='')}")
        except ManagementError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def delete_user(self, name: str) -> None:
        await self.call("DELETE", f"/users/{quote(name, safe='')}")

    async def set_permissions(
        self, vhost: str, user: str, *, configure: str, write: str, read: str
    ) -> None:
        await self.call(
            "PUT",
            f"/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}",
            {"configure": configure, "write": write, "read": read},
        )

    async def queues(self, vhost: str) -> list[dict[str, Any]]:
        result = await self.call("GET", f"/queues/{quote(vhost, safe='')}")
        return list(result or [])

    async def cluster_nodes(self) -> list[str]:
        """The names of the broker cluster's nodes, running or not."""
        result = await self.call("GET", "/nodes?columns=name")
        return sorted(str(node["name"]) for node in result or [])

    async def queues_with_lengths(
        self, vhost: str, *, seconds: int, every: int
    ) -> list[dict[str, Any]]:
        """Every queue's figures, with its length (`messages`) sampled every `every`
        seconds over the last `seconds` (in `messages_details.samples`)."""
        result = await self.call(
            "GET", f"/queues/{quote(vhost, safe='')}?{_lengths(seconds, every)}"
        )
        return list(result or [])

    async def queue_with_lengths(
        self, vhost: str, name: str, *, seconds: int, every: int
    ) -> dict[str, Any]:
        """One queue's figures, like `queues_with_lengths`."""
        path = f"/queues/{quote(vhost, safe='')}/{quote(name, safe='')}"
        return dict(await self.call("GET", f"{path}?{_lengths(seconds, every)}") or {})


def _lengths(seconds: int, every: int) -> str:
    return f"lengths_age={seconds}&lengths_incr={every}"


async def set_up_partner_login(
    api: Management, vhost: str, *, partner_id: str, broker_user: str, password: str | None
) -> None:
    """Create or update a partner's broker user with the permissions of a partner.
    `password` None: a certificate login, with no password at all."""
    if password is None:
        await api.put_user_without_password(broker_user)
    else:
        await api.put_user(broker_user, password)
    await api.set_permissions(vhost, broker_user, **partner_permissions(partner_id))


def _escaped(partner_id: str) -> str:
    return partner_id.replace(".", r"\.").replace("-", r"\-")


def partner_permissions(partner_id: str) -> dict[str, str]:
    """What a partner's broker login may do: publish to vi.inbound, read its own
    mailbox, declare nothing."""
    return {
        "configure": "^$",
        "write": r"^vi\.inbound$",
        "read": rf"^partner\.{_escaped(partner_id)}$",
    }


def portal_permissions(mailboxes: Iterable[str]) -> dict[str, str]:
    """What the portal's broker login may do: publish to vi.inbound, read the mailboxes
    it serves (its own partner.portal and those of the partners on channel "portal"),
    declare nothing."""
    names = "|".join(sorted(_escaped(m) for m in mailboxes))
    return {"configure": "^$", "write": r"^vi\.inbound$", "read": rf"^partner\.({names})$"}


async def set_up_portal_login(
    api: Management, vhost: str, config: RegionConfig, *, password: str
) -> None:
    """Create the portal's broker user ([portal] broker_user), or give it a new
    password, with the portal's permissions."""
    assert config.portal is not None, "the region file has no [portal] section"
    await api.put_user(config.portal.broker_user, password)
    await _grant_portal(api, vhost, config)


async def refresh_portal_login(api: Management, vhost: str, config: RegionConfig) -> None:
    """After `region apply`: the portal's login reads the mailboxes of the partners
    now on channel "portal". A certificate login is created here (without a
    password); a password login only once it exists (`partner login portal`)."""
    assert config.portal is not None, "the region file has no [portal] section"
    user = config.portal.broker_user
    if config.portal.login is Login.CERTIFICATE:
        await api.put_user_without_password(user)
    elif not await api.user_exists(user):
        return
    await _grant_portal(api, vhost, config)


async def _grant_portal(api: Management, vhost: str, config: RegionConfig) -> None:
    assert config.portal is not None
    await api.set_permissions(
        vhost, config.portal.broker_user, **portal_permissions(config.portal_mailboxes)
    )
