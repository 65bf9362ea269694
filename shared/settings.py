"""Settings from the environment, with defaults that work on a developer machine."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shared.amqp.nodes import first_node

DEV_PSEUDONYM_KEY = "dev-only-pseudonym-key-change-me"


def _int_tuple(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.split(",") if part.strip())


def _path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # For an amqps:// URL: the CA that signed the broker's certificate (unset: the
    # system's trust store), and the services' own client certificate and key for a
    # certificate login (`?auth=external` in the URL).
    amqp_ca_file: Path | None = None
    amqp_cert_file: Path | None = None
    amqp_key_file: Path | None = None
    database_url: str = "postgresql://postgres@127.0.0.1:5432/verwijsindex"
    management_url: str = "http://guest:guest@127.0.0.1:15672"
    smtp_url: str | None = None
    mail_dir: Path = Path("var/mail")
    mail_from: str = "verwijsindex@regio.example"
    pseudonym_key: str = DEV_PSEUDONYM_KEY
    prefetch: int = 64
    db_pool_size: int = 10
    # Messages a consumer handles together when they queue up (the matcher in one
    # database transaction), and how many such batches it runs at once. 1 turns
    # batching off.
    batch_size: int = 32
    batch_concurrency: int = 2
    # Backoff for technical failures: one delay queue per step; after the last the
    # message is parked.
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    # Broker-side backstop against crash loops (quorum queue x-delivery-limit).
    delivery_limit: int = 20
    outbox_grace_seconds: float = 5.0
    config_reload_seconds: float = 5.0
    retention_interval_seconds: float = 60.0
    # /healthz, /readyz, /metrics; -1 turns the endpoint off, 0 picks a free port.
    http_host: str = "0.0.0.0"  # noqa: S104 - containers are scraped from outside
    http_port: int = -1
    log_level: str = "info"

    @property
    def service_broker_user(self) -> str:
        """The login the services use; only they may set this AMQP user_id. With a
        certificate login the URL names it too (`amqps://verwijsindex@host/?auth=external`):
        it is the common name of the services' certificate."""
        # With several nodes, the first node's login stands for all.
        return urlsplit(first_node(self.amqp_url)).username or "guest"

    @property
    def uses_dev_key(self) -> bool:
        return self.pseudonym_key == DEV_PSEUDONYM_KEY

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            amqp_url=e.get("VI_AMQP_URL", d.amqp_url),
            amqp_ca_file=_path(e.get("VI_AMQP_CA_FILE")),
            amqp_cert_file=_path(e.get("VI_AMQP_CERT_FILE")),
            amqp_key_file=_path(e.get("VI_AMQP_KEY_FILE")),
            database_url=e.get("VI_DATABASE_URL", d.database_url),
            management_url=e.get("VI_MANAGEMENT_URL", d.management_url),
            smtp_url=e.get("VI_SMTP_URL") or None,
            mail_dir=Path(e.get("VI_MAIL_DIR", str(d.mail_dir))),
            mail_from=e.get("VI_MAIL_FROM", d.mail_from),
            pseudonym_key=e.get("VI_PSEUDONYM_KEY", d.pseudonym_key),
            prefetch=int(e.get("VI_PREFETCH", d.prefetch)),
            db_pool_size=int(e.get("VI_DB_POOL_SIZE", d.db_pool_size)),
            batch_size=int(e.get("VI_BATCH_SIZE", d.batch_size)),
            batch_concurrency=int(e.get("VI_BATCH_CONCURRENCY", d.batch_concurrency)),
            retry_delays_ms=_int_tuple(e["VI_RETRY_DELAYS_MS"])
            if "VI_RETRY_DELAYS_MS" in e
            else d.retry_delays_ms,
            delivery_limit=int(e.get("VI_DELIVERY_LIMIT", d.delivery_limit)),
            outbox_grace_seconds=float(e.get("VI_OUTBOX_GRACE_SECONDS", d.outbox_grace_seconds)),
            config_reload_seconds=float(e.get("VI_CONFIG_RELOAD_SECONDS", d.config_reload_seconds)),
            retention_interval_seconds=float(
                e.get("VI_RETENTION_INTERVAL_SECONDS", d.retention_interval_seconds)
            ),
            http_host=e.get("VI_HTTP_HOST", d.http_host),
            http_port=int(e.get("VI_HTTP_PORT", d.http_port)),
            log_level=e.get("VI_LOG_LEVEL", d.log_level),
        )
