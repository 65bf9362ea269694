"""Prometheus metrics of the pipeline (names match the Grafana dashboard)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("vi_messages", "Messages handled, by outcome", ["service", "queue", "outcome"])
HANDLING_SECONDS = Histogram(
    "vi_handling_seconds",
    "Time to handle one message",
    ["service", "queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RETRIES = Counter("vi_retries", "Messages sent to a retry delay queue", ["service", "queue"])
PARKED = Counter("vi_parked", "Messages parked after their last retry", ["service", "queue"])
OUTBOX_BACKLOG = Gauge("vi_outbox_backlog", "Rows waiting in the outbox", ["service"])
OUTBOX_LAG = Gauge(
    "vi_outbox_lag_seconds", "Age of the oldest row waiting in the outbox", ["service"]
)
READY = Gauge("vi_ready", "1 when the service is ready (broker, database, consumers)", ["service"])


def observe(service: str, queue: str, outcome: str, seconds: float) -> None:
    MESSAGES.labels(service, queue, outcome).inc()
    HANDLING_SECONDS.labels(service, queue).observe(seconds)
    if outcome == "retried":
        RETRIES.labels(service, queue).inc()
    elif outcome == "parked":
        PARKED.labels(service, queue).inc()
