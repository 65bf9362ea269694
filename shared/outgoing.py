"""One message to publish, from the handler that decides it, through the outbox, to
the publisher. Free of I/O and of the broker and database clients: domain code builds
these."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class OutboundMessage:
    """Published persistent and mandatory (an unroutable message is an error)."""

    exchange: str
    routing_key: str
    body: bytes
    message_type: str | None
    # The services' own messages have a UUID; a copy of a received message keeps the
    # sender's text. Also the outbox row's key.
    message_id: uuid.UUID | str
    correlation_id: str | None = None
    # In the outbox stored as JSON: string, number and boolean values only.
    headers: Mapping[str, Any] | None = None
    # Set on copies the runtime makes and on the portal's requests: the broker checks
    # that it is the publishing login.
    user_id: str | None = None
    content_type: str | None = "application/json"
    content_encoding: str | None = None
    app_id: str | None = None
    # When it was made; a copy of a received message keeps the original's (or none).
    timestamp: datetime | None = field(default_factory=lambda: datetime.now(UTC))

    @property
    def wire_id(self) -> str:
        """The message_id as the broker carries it."""
        return str(self.message_id)


def new_message_id() -> str:
    """An id for a message that has none of its own (the broker client would give it
    one anyway, and a return names its message by id only)."""
    return uuid.uuid4().hex
