"""How long a queue has been holding messages, from the broker's own figures, without
touching a message.

Reading a message to see its age would be a get and a give-back, which on a quorum
queue spends the message's delivery budget (see `shared.amqp.inspect`). The management
API's `head_message_timestamp` exists for classic queues only, and every queue here is
a quorum queue. What the broker does keep for every queue is a history of its length:
the messages in a queue now all arrived after the last moment it was seen empty. So
the time since then is the age of its oldest message when the queue drains now and
then (a holding queue between two clean-ups, a stuck work queue), and an upper bound
for a busy queue that never drains. The samples are taken every 5 s (the broker's
`collect_statistics_interval`), which is also the precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A short, fine history for every queue; a long, coarse one (what the broker keeps by
# default) only for a queue that was never empty in the short one.
SHORT = (600, 5)
LONG = (86400, 600)


@dataclass(frozen=True)
class HeldFor:
    seconds: float
    # Never empty in the whole history: the oldest message is at least this old.
    at_least: bool


def held_for(queue: Mapping[str, Any], now: float) -> HeldFor | None:
    """How long `queue` (a management API queue document with length samples) has
    not been empty, as of `now` (epoch seconds); None when the broker has no samples
    yet (a queue declared seconds ago, or statistics switched off)."""
    details = queue.get("messages_details") or {}
    samples = sorted(details.get("samples") or [], key=lambda s: s["timestamp"], reverse=True)
    if not samples:
        return None
    for sample in samples:
        if sample["sample"] == 0:
            return HeldFor(_since(sample["timestamp"], now), at_least=False)
    return HeldFor(_since(samples[-1]["timestamp"], now), at_least=True)


def _since(timestamp_ms: int, now: float) -> float:
    # The broker stamps a sample with the end of its interval, up to a few seconds
    # ahead of a clock read just now.
    return max(0.0, now - timestamp_ms / 1000)
