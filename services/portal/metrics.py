"""The portal's own Prometheus metrics (on the service's /metrics beside the shared
ones): logins, requests sent for partners, mailbox messages and requests waiting."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

LOGIN_OUTCOMES = ("ok", "invalid", "locked", "address_refused")

LOGINS = Counter("vi_portal_logins", "Portal login attempts, by outcome", ["outcome"])
REQUESTS = Counter(
    "vi_portal_requests", "Messages the portal sent for its partners, by type", ["type"]
)
MAILBOX = Counter(
    "vi_portal_mailbox_messages",
    "Messages read from the portal's mailboxes, by type and outcome (applied, seen, kept)",
    ["type", "outcome"],
)
UNPUBLISHED = Gauge(
    "vi_portal_unpublished", "Requests written but not yet published (the relay's backlog)"
)


def watch() -> None:
    """Create the login series at zero, so a rate is right from the first attempt."""
    for outcome in LOGIN_OUTCOMES:
        LOGINS.labels(outcome)
