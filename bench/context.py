"""What every benchmark part shares: the base settings, the partner logins, replica
counts, extra service settings, and small statistics helpers."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import BenchEnv, Logins
from shared.region.model import RegionConfig
from shared.settings import Settings


@dataclass
class Context:
    base: Settings
    logins: Logins
    region: RegionConfig
    replicas: dict[str, int]
    log_dir: Path
    # Extra VI_* settings for every service process (VI_PREFETCH, VI_LOG_LEVEL, ...).
    service_env: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 60.0

    @asynccontextmanager
    async def environment(self, region: RegionConfig | None = None) -> AsyncIterator[BenchEnv]:
        """A fresh region (by default the run's benchmark region)."""
        env = await BenchEnv.create(self.base, self.logins, region or self.region)
        try:
            yield env
        finally:
            await env.close()

    def env_for(self, env: BenchEnv, **extra: str) -> dict[str, str]:
        return env.service_env({**self.service_env, **extra})

    @property
    def prefetch(self) -> int:
        return int(self.service_env.get("VI_PREFETCH", self.base.prefetch))


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1) if ms else math.nan,
    }


class Rate:
    """Per-second rate of a growing counter, for the progress line."""

    def __init__(self, value: Callable[[], int]) -> None:
        self._value = value
        self._last = value()
        self._at = time.monotonic()

    def __call__(self) -> float:
        now, value = time.monotonic(), self._value()
        rate = (value - self._last) / max(now - self._at, 1e-6)
        self._last, self._at = value, now
        return rate


def steady_rate(times: Sequence[float], skip_fraction: float = 0.05) -> float:
    """Arrivals per second between the first `skip_fraction` of arrivals and the last
    (leaves out start-up)."""
    if len(times) < 2:
        return math.nan
    ordered = sorted(times)
    first = int(len(ordered) * skip_fraction)
    span = ordered[-1] - ordered[first]
    return (len(ordered) - 1 - first) / span if span > 0 else math.nan


def replica_counts(counts: Mapping[str, int], names: Sequence[str]) -> dict[str, int]:
    return {name: counts.get(name, 0) for name in names if counts.get(name, 0) > 0}
