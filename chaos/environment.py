"""A fresh region for one run: vhost, database, partner broker logins, region config;
all removed again at the end."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from chaos.backends import Backends
from shared.amqp.connection import connect
from shared.amqp.management import Management, partner_permissions
from shared.amqp.nodes import first_node, split_nodes
from shared.amqp.topology import declare_core, declare_partner_queues
from shared.db import migrate
from shared.db.pool import connect as connect_db
from shared.region.model import RegionConfig, parse_region
from shared.region.store import store_region
from tests.support import region_document

PSEUDONYM_KEY = "chaos-run-pseudonym-key"


def _with_login(url: str, user: str, password: str, vhost: str) -> str:
    """`url` (every node of it, on a cluster) with this login and virtual host."""
    login = f"{quote(user, safe='')}:{quote(password, safe='')}"
    path = "/" + quote(vhost, safe="")
    return ",".join(
        urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port}", path=path))
        for parts in map(urlsplit, split_nodes(url))
    )


@dataclass
class Environment:
    backends: Backends
    run_id: str
    vhost: str
    database: str
    region: RegionConfig
    partner_password: str
    work_dir: Path
    retry_delays_ms: tuple[int, ...]
    delivery_limit: int = 20

    @property
    def management(self) -> Management:
        return Management(self.backends.management_url)

    @property
    def service_user(self) -> str:
        return urlsplit(first_node(self.backends.amqp_url)).username or "guest"

    @property
    def service_amqp_url(self) -> str:
        parts = urlsplit(first_node(self.backends.amqp_url))
        return _with_login(
            self.backends.amqp_url, parts.username or "guest", parts.password or "guest", self.vhost
        )

    @property
    def database_url(self) -> str:
        base = urlsplit(self.backends.database_url)
        return urlunsplit(base._replace(path=f"/{self.database}"))

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].own_broker_user
        return _with_login(self.backends.amqp_url, user, self.partner_password, self.vhost)

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
        document: dict[str, Any] = region_document(f"chaos-{run_id}")
        region = parse_region(document)
        env = cls(
            backends=backends,
            run_id=run_id,
            vhost=f"vi-chaos-{run_id}",
            database=f"vi_chaos_{run_id}",
            region=region,
            partner_password=secrets.token_urlsafe(18),
            work_dir=work_dir,
            retry_delays_ms=retry_delays_ms,
        )
        management = env.management
        await management.put_vhost(env.vhost)
        await management.set_permissions(
            env.vhost, env.service_user, configure=".*", write=".*", read=".*"
        )
        for partner in region.partner:
            await management.put_user(partner.own_broker_user, env.partner_password)
            await management.set_permissions(
                env.vhost, partner.own_broker_user, **partner_permissions(partner.id)
            )
        admin = await asyncpg.connect(backends.database_url)
        try:
            await admin.execute(f'CREATE DATABASE "{env.database}"')
        finally:
            await admin.close()
        await migrate.upgrade(env.database_url)
        await env.apply_region()
        return env

    async def apply_region(self) -> None:
        """What `verwijsindex region apply` does: topology first, then the config."""
        connection = await connect(self.service_amqp_url, "chaos-setup")
        try:
            async with connection.channel() as channel:
                await declare_core(
                    channel,
                    retry_delays_ms=self.retry_delays_ms,
                    delivery_limit=self.delivery_limit,
                )
                await declare_partner_queues(channel, [p.id for p in self.region.partner])
        finally:
            await connection.close()
        conn = await connect_db(self.database_url)
        try:
            await store_region(conn, self.region)
        finally:
            await conn.close()

    async def destroy(self) -> None:
        management = self.management
        await management.delete_vhost(self.vhost)
        for partner in self.region.partner:
            await management.delete_user(partner.own_broker_user)
        admin = await asyncpg.connect(self.backends.database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await admin.close()
