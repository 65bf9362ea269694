"""Prometheus metrics of the pipeline (names match the Grafana dashboard and the alert
rules in deploy/prometheus/alerts.yml).

A labelled series appears on /metrics only once its labels are used, and a rule
cannot see the first increase of a counter that was absent before it. So every series
a rule or panel reads is created, at zero, when the service starts: `watch_queue` for
a consumed queue, `watch_email` for the notifier, `watch_retention` for retention.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = ("ok", "retried", "parked", "requeued")
EMAIL_OUTCOMES = ("sent", "failed")
# The heartbeat census: live (reported lately), of those ready, and gone (silent
# without having said goodbye: crashed, killed or cut off; see shared.db.heartbeat).
REPLICA_STATES = ("live", "ready", "gone")

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
REPLICAS = Gauge(
    "vi_replicas",
    "Replicas of each service by their heartbeats (every replica reports every service)",
    ["service", "state"],
)
EMAILS = Counter(
    "vi_emails", "E-mails handed to the mail relay, by outcome", ["service", "outcome"]
)
RETENTION_LAST_SWEEP = Gauge(
    "vi_retention_last_sweep_timestamp_seconds",
    "Unix time of the last successful retention sweep (before the first: the start)",
    ["service"],
)
RETENTION_INTERVAL = Gauge(
    "vi_retention_interval_seconds", "Pause between retention sweeps", ["service"]
)
LEAD_ESCALATIONS_OVERDUE = Gauge(
    "vi_lead_escalations_overdue",
    "Matches past the lead deadline and not escalated, counted after each sweep",
    ["service"],
)

LANE_DIVERTED = Counter(
    "vi_lane_diverted",
    "Live messages ingest sent on in the bulk lane (their partner was over its live rate)",
    ["service", "partner"],
)


def watch_queue(service: str, queue: str) -> None:
    """Export the series of a queue `service` consumes, at zero, before any message."""
    for outcome in OUTCOMES:
        MESSAGES.labels(service, queue, outcome)
    HANDLING_SECONDS.labels(service, queue)
    RETRIES.labels(service, queue)
    PARKED.labels(service, queue)


def watch_email(service: str) -> None:
    for outcome in EMAIL_OUTCOMES:
        EMAILS.labels(service, outcome)


def watch_retention(service: str, interval_seconds: float) -> None:
    RETENTION_INTERVAL.labels(service).set(interval_seconds)
    RETENTION_LAST_SWEEP.labels(service).set(time.time())
    LEAD_ESCALATIONS_OVERDUE.labels(service)


def observe(service: str, queue: str, outcome: str, seconds: float) -> None:
    MESSAGES.labels(service, queue, outcome).inc()
    HANDLING_SECONDS.labels(service, queue).observe(seconds)
    if outcome == "retried":
        RETRIES.labels(service, queue).inc()
    elif outcome == "parked":
        PARKED.labels(service, queue).inc()


def report_replicas(census: dict[str, dict[str, int]]) -> None:
    """Replace the replica figures with `census` (service -> state -> count): a
    service whose rows are all gone from the table drops out rather than stay stale."""
    REPLICAS.clear()
    for service, counts in census.items():
        for state in REPLICA_STATES:
            REPLICAS.labels(service, state).set(counts.get(state, 0))
