"""A fresh region for one run: vhost, database (testing/sandbox.py), partner broker
logins, region config; all removed again at the end."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from chaos.backends import Backends
from shared.amqp.management import Management
from shared.region.model import RegionConfig, parse_region
from testing.documents import region_document
from testing.sandbox import Sandbox, delete_partner_users, put_partner_users

PSEUDONYM_KEY = "chaos-run-pseudonym-key"


@dataclass
class Environment:
    backends: Backends
    run_id: str
    sandbox: Sandbox
    region: RegionConfig
    partner_password: str
    work_dir: Path
    retry_delays_ms: tuple[int, ...]
    delivery_limit: int = 20

    @property
    def management(self) -> Management:
        return Management(self.backends.management_url)

    @property
    def vhost(self) -> str:
        return self.sandbox.vhost

    @property
    def database(self) -> str:
        return self.sandbox.database

    @property
    def service_amqp_url(self) -> str:
        return self.sandbox.amqp_url

    @property
    def database_url(self) -> str:
        return self.sandbox.database_url

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].own_broker_user
        return self.sandbox.login_url(user, self.partner_password)

    def service_env(self, **extra: str) -> dict[str, str]:
        """Environment of every service process."""
        return {
            "VI_AMQP_URL": self.service_amqp_url,
            "VI_DATABASE_URL": self.database_url,
            "VI_MANAGEMENT_URL": self.backends.management_url,
            "VI_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "VI_MAIL_DIR": str(self.work_dir / "mail"),
            "VI_RETRY_DELAYS_MS": ",".join(str(d) for d in self.retry_delays_ms),
            "VI_DELIVERY_LIMIT": str(self.delivery_limit),
            **extra,
        }

    @classmethod
    async def create(
        cls, backends: Backends, run_id: str, work_dir: Path, retry_delays_ms: tuple[int, ...]
    ) -> Environment:
        region = parse_region(region_document(f"chaos-{run_id}"))
        password = secrets.token_urlsafe(18)
        await put_partner_users(Management(backends.management_url), region.partner, password)
        sandbox = await Sandbox.create(
            amqp_url=backends.amqp_url,
            management_url=backends.management_url,
            database_url=backends.database_url,
            vhost=f"vi-chaos-{run_id}",
            database=f"vi_chaos_{run_id}",
            partners=region.partner,
        )
        env = cls(
            backends=backends,
            run_id=run_id,
            sandbox=sandbox,
            region=region,
            partner_password=password,
            work_dir=work_dir,
            retry_delays_ms=retry_delays_ms,
        )
        await env.sandbox.apply(
            region,
            retry_delays_ms=retry_delays_ms,
            delivery_limit=env.delivery_limit,
            connection_name="chaos-setup",
        )
        return env

    async def destroy(self) -> None:
        await self.sandbox.remove()
        await delete_partner_users(self.management, self.region.partner)
