"""A received message, and which of its headers the runtime trusts."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from shared.outgoing import OutboundMessage, new_message_id

ATTEMPT_HEADER = "x-vi-attempt"
ERROR_HEADER = "x-vi-error"
USER_ID_HEADER = "x-vi-user-id"
ROUTING_KEY_HEADER = "x-vi-routing-key"
QUEUE_HEADER = "x-vi-queue"
# On a copy of a message that had no message_id: the broker client gives every
# message it publishes an id, so the copy carries an invented one and this flag.
NO_MESSAGE_ID_HEADER = "x-vi-no-message-id"
REPLAYED_HEADER = "x-vi-replayed"
# The headers the runtime writes on its own copies and trusts on them: whatever a
# partner put in these is dropped before the runtime copies its message.
RUNTIME_HEADERS = frozenset(
    {
        ATTEMPT_HEADER,
        ERROR_HEADER,
        USER_ID_HEADER,
        ROUTING_KEY_HEADER,
        QUEUE_HEADER,
        NO_MESSAGE_ID_HEADER,
        REPLAYED_HEADER,
    }
)


@dataclass
class Binding:
    """Durable state a handler tied a delivery to, kept with the delivery while this
    process holds it (ingest: the arrival it recorded for it)."""

    arrival_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Delivery:
    message: AbstractIncomingMessage
    service_user: str
    # Handled again alone after its batch failed: its batch may have got as far as
    # answering it.
    after_failed_batch: bool = False
    # Shared by the copies `replace` makes, so a failed batch's binding is reused.
    binding: Binding = field(default_factory=Binding, compare=False, repr=False)
    # Which channel it came on: delivery tags count per channel, and after a reconnect
    # deliveries of the old channel and the new one can wait in one batch.
    channel_key: int = field(default=0, compare=False)

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.message.headers or {})

    @property
    def body(self) -> bytes:
        return self.message.body

    @property
    def correlation_id(self) -> str | None:
        return self.message.correlation_id

    @property
    def _from_runtime(self) -> bool:
        # Only the services' own login can set this user_id (the broker checks it), so
        # headers on such a message were written by the runtime, never by a partner.
        return self.message.user_id == self.service_user and USER_ID_HEADER in self.headers

    @property
    def attempt(self) -> int:
        value = self.headers.get(ATTEMPT_HEADER, 0) if self._from_runtime else 0
        return int(value) if isinstance(value, int) else 0

    @property
    def seen_before(self) -> bool:
        """True when this very message may have been handled before (broker redelivery,
        our own retry, an operator's replay), as opposed to a fresh publish."""
        replayed = self._from_runtime and bool(self.headers.get(REPLAYED_HEADER))
        return (
            bool(self.message.redelivered)
            or self.attempt > 0
            or replayed
            or self.after_failed_batch
        )

    @property
    def user_id(self) -> str | None:
        if self._from_runtime:
            original = self.headers.get(USER_ID_HEADER)
            return original if isinstance(original, str) and original else None
        return self.message.user_id

    @property
    def message_id(self) -> str | None:
        """The message_id the sender gave, None when it gave none."""
        if self._from_runtime and self.headers.get(NO_MESSAGE_ID_HEADER):
            return None
        return self.message.message_id

    @property
    def routing_key(self) -> str:
        if self._from_runtime:
            original = self.headers.get(ROUTING_KEY_HEADER)
            if isinstance(original, str):
                return original
        return self.message.routing_key or ""

    def copy_for_runtime(
        self, queue: str, headers: Mapping[str, Any], *, drop: Collection[str] = ()
    ) -> OutboundMessage:
        """The same message, re-published by the runtime to `queue` (retry, park,
        dead letter, replay), with `headers` added and the `drop` headers removed."""
        msg = self.message
        merged = self.headers
        if not self._from_runtime:
            # A partner's own x-vi-user-id would otherwise make the copy speak for
            # another partner once the runtime's login vouches for it.
            for name in RUNTIME_HEADERS:
                merged.pop(name, None)
        merged.setdefault(USER_ID_HEADER, self.user_id or "")
        merged.setdefault(ROUTING_KEY_HEADER, self.routing_key)
        if msg.message_id is None:
            merged[NO_MESSAGE_ID_HEADER] = True
        merged.update(headers)
        for name in drop:
            merged.pop(name, None)
        return OutboundMessage(
            "",
            queue,
            msg.body,
            message_type=msg.type,
            message_id=msg.message_id or new_message_id(),
            correlation_id=msg.correlation_id,
            headers=merged,
            user_id=self.service_user,
            content_type=msg.content_type,
            content_encoding=msg.content_encoding,
            app_id=msg.app_id,
            timestamp=msg.timestamp,
        )
