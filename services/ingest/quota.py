"""Fair shares between live partners: a token bucket per partner (free of I/O).

A partner may send `rate` live messages a second after a burst of `burst`; what it
sends beyond that is not refused but moved, unread, to the bulk lane, so the others'
live traffic waits only for ingest's read of one partner's flood, not
for its validation, matching and e-mails (see docs/performance.md, "Lanes").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float) -> bool:
        """Spend one token if there is one (refilled at `rate` since the last call)."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class PartnerQuotas:
    """One bucket per partner; a changed rate or burst (a new region config) starts
    that partner's bucket afresh."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def admit(self, partner_id: str, *, rate: float, burst: float, now: float) -> bool:
        bucket = self._buckets.get(partner_id)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            bucket = self._buckets[partner_id] = TokenBucket.full(rate, burst, now)
        return bucket.take(now)
