"""The portal's own settings (VI_PORTAL_*), beside the services' shared ones."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _flag(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class PortalSettings:
    # The portal's own broker login ([portal] broker_user in the region file): it
    # publishes for the portal partners with this login as user_id and reads their
    # mailboxes. Not the services' login.
    amqp_url: str = "amqp://portal:portal@127.0.0.1:5672/"
    amqp_cert_file: Path | None = None
    amqp_key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Where users reach the portal; activation links start with it.
    base_url: str = "http://localhost:8080"
    # Cookies are Secure (HTTPS only) unless this development switch is on: plain http
    # on localhost only.
    insecure_cookies: bool = False
    idle_minutes: int = 15
    max_failed_logins: int = 5
    lock_minutes: int = 15
    # Failed logins from one network address (any accounts) before that address is
    # refused until its window of this many minutes ends.
    max_failed_logins_per_address: int = 20
    address_window_minutes: int = 15
    activation_days: int = 7
    # How long a form post waits for the index's receipt before showing "in behandeling".
    receipt_wait_seconds: float = 4.0
    # How often the mailboxes of newly applied portal partners are looked for.
    mailbox_scan_seconds: float = 5.0
    # The coordinator's list flags an open match not followed up ("afgestemd") this
    # many days after it formed.
    followup_days: int = 14

    @property
    def cookie_prefix(self) -> str:
        """`__Host-` binds a cookie to this host and path / over HTTPS; browsers refuse
        it on plain http, so development cookies go without."""
        return "" if self.insecure_cookies else "__Host-"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PortalSettings:
        e = dict(os.environ if env is None else env)
        d = cls()
        port = int(e.get("VI_PORTAL_PORT", d.port))
        return cls(
            amqp_url=e.get("VI_PORTAL_AMQP_URL", d.amqp_url),
            amqp_cert_file=Path(e["VI_PORTAL_AMQP_CERT_FILE"])
            if e.get("VI_PORTAL_AMQP_CERT_FILE")
            else None,
            amqp_key_file=Path(e["VI_PORTAL_AMQP_KEY_FILE"])
            if e.get("VI_PORTAL_AMQP_KEY_FILE")
            else None,
            host=e.get("VI_PORTAL_HOST", d.host),
            port=port,
            base_url=e.get("VI_PORTAL_BASE_URL", f"http://localhost:{port}").rstrip("/"),
            insecure_cookies=_flag(e.get("VI_PORTAL_INSECURE_COOKIES")),
            idle_minutes=int(e.get("VI_PORTAL_IDLE_MINUTES", d.idle_minutes)),
            max_failed_logins=int(e.get("VI_PORTAL_MAX_FAILED_LOGINS", d.max_failed_logins)),
            lock_minutes=int(e.get("VI_PORTAL_LOCK_MINUTES", d.lock_minutes)),
            max_failed_logins_per_address=int(
                e.get("VI_PORTAL_MAX_FAILED_LOGINS_PER_ADDRESS", d.max_failed_logins_per_address)
            ),
            address_window_minutes=int(
                e.get("VI_PORTAL_ADDRESS_WINDOW_MINUTES", d.address_window_minutes)
            ),
            activation_days=int(e.get("VI_PORTAL_ACTIVATION_DAYS", d.activation_days)),
            receipt_wait_seconds=float(
                e.get("VI_PORTAL_RECEIPT_WAIT_SECONDS", d.receipt_wait_seconds)
            ),
            mailbox_scan_seconds=float(
                e.get("VI_PORTAL_MAILBOX_SCAN_SECONDS", d.mailbox_scan_seconds)
            ),
            followup_days=int(e.get("VI_PORTAL_FOLLOWUP_DAYS", d.followup_days)),
        )
