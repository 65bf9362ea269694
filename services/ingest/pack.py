"""Packs: partner messages moved, unvalidated and many per broker message, from
`vi.ingest` to `vi.ingest.admitted` or, beyond their partner's share, to
`vi.ingest.bulk` (free of I/O).

Ingest's first pass over `vi.ingest` looks at a message's `user_id` and its partner's
token bucket only and packs the message here, so the pass costs little more than
reading it and the other partners' messages behind a flood are reached sooner (see
`services/ingest/lanes.py`). Those queues unpack a pack into `PackedMessage`s and
handle them like any delivery (`services/ingest/bulk.py`).

A packed message keeps what ingest reads: the sender's `user_id`, `message_id`,
routing key, correlation id, body, whether it may have been handled before, the
arrival its publish was bound to, and those headers that decide who speaks (the
portal's headers: a partner using them is refused, so their presence must survive).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.amqp.consuming import (
    NO_MESSAGE_ID_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    Binding,
)
from shared.contract.portal import ACTOR_HEADER, COORDINATOR_HEADER, ON_BEHALF_OF_HEADER
from shared.outgoing import OutboundMessage, new_message_id

# The message type of a pack on vi.ingest.bulk (published with the services' login,
# which no partner can use, so a partner cannot forge one).
PACK_TYPE = "ingest.pack"
# The headers a pack keeps: the only ones ingest reads (`services/ingest/sender.py`).
KEPT_HEADERS = (ON_BEHALF_OF_HEADER, ACTOR_HEADER, COORDINATOR_HEADER)


class Inbound(Protocol):
    """What ingest reads of a partner's message: a delivery from the broker
    (`shared.amqp.consuming.Delivery`) or a message out of a pack."""

    @property
    def user_id(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, Any]: ...
    @property
    def seen_before(self) -> bool: ...
    @property
    def binding(self) -> Binding: ...

    def copy_for_runtime(self, queue: str, headers: Mapping[str, Any]) -> OutboundMessage: ...


class BadPack(ValueError):
    """A pack that cannot be read (only the services write packs: a bug)."""


@dataclass(frozen=True)
class PackedMessage:
    user_id: str | None
    message_id: str | None
    routing_key: str
    correlation_id: str | None
    body: bytes
    headers: dict[str, Any]
    seen_before: bool
    # Preset from the pack: the arrival ingest's first pass recorded for the publish.
    binding: Binding = field(default_factory=Binding, compare=False)
    # The services' login, which vouches for the copies made of it.
    service_user: str = ""

    def copy_for_runtime(self, queue: str, headers: Mapping[str, Any]) -> OutboundMessage:
        """The message as the runtime copies it (to `vi.rejected`): the sender, routing
        key and message_id in the runtime's headers, like `Delivery.copy_for_runtime`."""
        merged: dict[str, Any] = dict(self.headers)
        merged[USER_ID_HEADER] = self.user_id or ""
        merged[ROUTING_KEY_HEADER] = self.routing_key
        if self.message_id is None:
            merged[NO_MESSAGE_ID_HEADER] = True
        merged.update(headers)
        return OutboundMessage(
            "",
            queue,
            self.body,
            message_type=None,
            message_id=self.message_id or new_message_id(),
            correlation_id=self.correlation_id,
            headers=merged,
            user_id=self.service_user,
        )


def pack(messages: Sequence[Inbound]) -> bytes:
    """One pack of `messages`, in their order, with the arrivals they are bound to."""
    return json.dumps(
        [
            {
                "u": m.user_id,
                "m": m.message_id,
                "r": m.routing_key,
                "c": m.correlation_id,
                "h": _kept_headers(m.headers),
                "s": m.seen_before,
                "a": str(m.binding.arrival_id) if m.binding.arrival_id else None,
                "b": base64.b64encode(m.body).decode("ascii"),
            }
            for m in messages
        ],
        separators=(",", ":"),
    ).encode()


def unpack(body: bytes, *, service_user: str, seen_before: bool) -> list[PackedMessage]:
    """The messages of a pack; `seen_before` when the pack itself may have been
    handled before (then so may each of its messages)."""
    try:
        items = json.loads(body)
        if not isinstance(items, list):
            raise TypeError("not a list")
        return [
            PackedMessage(
                user_id=item["u"],
                message_id=item["m"],
                routing_key=item["r"],
                correlation_id=item["c"],
                body=base64.b64decode(item["b"], validate=True),
                headers=dict(item["h"]),
                seen_before=bool(item["s"]) or seen_before,
                binding=Binding(uuid.UUID(item["a"]) if item["a"] else None),
                service_user=service_user,
            )
            for item in items
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadPack(f"unreadable pack: {type(exc).__name__}") from exc


def _kept_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _as_text(headers[name]) for name in KEPT_HEADERS if name in headers}


def _as_text(value: Any) -> str:
    """A header value JSON can carry, read the same by `sender._text`: text as it
    was, bytes as UTF-8, anything else (or bytes that are no UTF-8) as "", which that
    reading takes as no value while the header is still there."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return ""
    return ""
