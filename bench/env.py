"""A throw-away region for one benchmark part: a fresh vhost, a fresh migrated
database, the region config, and partner broker logins (demo style: a login per
partner, with exactly the permissions the partner guide prescribes)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared.amqp.connection import connect
from shared.amqp.management import Management, partner_permissions
from shared.amqp.nodes import first_node, split_nodes
from shared.amqp.topology import declare_core, declare_partner_queues
from shared.db import migrate
from shared.db.pool import connect as connect_db
from shared.region.model import RegionConfig, parse_region
from shared.region.store import store_region
from shared.settings import Settings

PSEUDONYM_KEY = "bench-pseudonym-key"
# Reporters that send meldingen, and the register (present as in a real region).
REPORTERS: tuple[tuple[str, str, str], ...] = (
    ("school", "Basisschool De Regenboog", "onderwijs"),
    ("jeugdteam", "Jeugdteam Noord", "jeugdhulp"),
    ("jgz", "GGD Jeugdgezondheidszorg", "jgz"),
    ("huisarts", "Huisartsenpraktijk West", "zorg"),
)
MUNICIPALITIES: tuple[tuple[str, str], ...] = (
    ("0363", "Amsterdam"),
    ("0599", "Rotterdam"),
    ("0344", "Utrecht"),
)
REPORTER_IDS: tuple[str, ...] = tuple(pid for pid, _, _ in REPORTERS)
# The parts other than bench/lanes.py measure the pipeline as it was before lanes: no
# partner is held to a live rate, so a bulk load stays in the live lane.
UNLIMITED_LIVE = {"live_rate": 100_000.0, "live_burst": 1_000_000}


def with_login(url: str, *, user: str, password: str, vhost: str) -> str:
    """`url` (every node of it, on a cluster) with this login and virtual host."""
    login = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return ",".join(
        urlunsplit(
            parts._replace(
                netloc=f"{login}@{parts.hostname}:{parts.port or 5672}",
                path="/" + quote(vhost, safe=""),
            )
        )
        for parts in map(urlsplit, split_nodes(url))
    )


def _db_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def region_document(login_prefix: str) -> dict[str, Any]:
    """The benchmark region: no regie priority, so a match is one event with a notice
    to each of the two partners and three e-mails (two reporters, one coordinator)."""
    partners = [
        {"id": pid, "name": name, "sector": sector, "roles": ["reporter"]}
        for pid, name, sector in REPORTERS
    ]
    partners.append(
        {
            "id": "brp",
            "name": "Basisregistratie Personen",
            "sector": "gemeente",
            "roles": ["population_register"],
        }
    )
    for partner in partners:
        partner["broker_user"] = f"{login_prefix}-{partner['id']}"
    return {
        # Family matching off: the pipeline parts measure what they always did; the
        # e2e-family part turns it on (bench/family.py).
        "region": {
            "name": "Benchmarkregio",
            "regie_deadline_days": 14,
            "family_match": [],
            **UNLIMITED_LIVE,
        },
        "municipality": [
            {"code": code, "name": name, "coordinator_email": f"regie@{name.lower()}.example"}
            for code, name in MUNICIPALITIES
        ],
        "partner": partners,
    }


@dataclass
class Logins:
    """The partner broker logins, shared by every part of one benchmark run."""

    base: Settings
    prefix: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:6]}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    created: list[str] = field(default_factory=list)

    @property
    def management(self) -> Management:
        return Management(self.base.management_url)

    async def create(self) -> RegionConfig:
        region = parse_region(region_document(self.prefix))
        for partner in region.partner:
            await self.management.put_user(partner.own_broker_user, self.password)
            self.created.append(partner.own_broker_user)
        return region

    async def delete(self) -> None:
        for user in self.created:
            await self.management.delete_user(user)
        self.created.clear()


@dataclass
class BenchEnv:
    """One isolated region: vhost + database, both removed by `close()`."""

    base: Settings
    logins: Logins
    region: RegionConfig
    vhost: str
    database: str

    @classmethod
    async def create(cls, base: Settings, logins: Logins, region: RegionConfig) -> BenchEnv:
        suffix = uuid.uuid4().hex[:10]
        env = cls(base, logins, region, f"vi-bench-{suffix}", f"vi_bench_{suffix}")
        management = logins.management
        await management.put_vhost(env.vhost)
        try:
            await management.set_permissions(
                env.vhost, base.service_broker_user, configure=".*", write=".*", read=".*"
            )
            for partner in region.partner:
                await management.set_permissions(
                    env.vhost, partner.own_broker_user, **partner_permissions(partner.id)
                )
            admin = await asyncpg.connect(_db_url(base.database_url, "postgres"))
            try:
                await admin.execute(f'CREATE DATABASE "{env.database}"')
            finally:
                await admin.close()
            await migrate.upgrade(env.database_url)
            conn = await connect_db(env.database_url)
            try:
                await store_region(conn, region)
            finally:
                await conn.close()
            connection = await connect(env.amqp_url, "bench-setup")
            try:
                async with connection.channel() as channel:
                    await declare_core(
                        channel,
                        retry_delays_ms=base.retry_delays_ms,
                        delivery_limit=base.delivery_limit,
                    )
                    await declare_partner_queues(channel, [p.id for p in region.partner])
            finally:
                await connection.close()
        except BaseException:
            await env.close()
            raise
        return env

    async def close(self) -> None:
        await self.logins.management.delete_vhost(self.vhost)
        admin = await asyncpg.connect(_db_url(self.base.database_url, "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await admin.close()

    @property
    def database_url(self) -> str:
        return _db_url(self.base.database_url, self.database)

    @property
    def amqp_url(self) -> str:
        """The services' own login, on this region's vhost."""
        parts = urlsplit(first_node(self.base.amqp_url))
        return with_login(
            self.base.amqp_url,
            user=parts.username or "guest",
            password=parts.password or "guest",
            vhost=self.vhost,
        )

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].own_broker_user
        return with_login(
            self.base.amqp_url, user=user, password=self.logins.password, vhost=self.vhost
        )

    def service_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """VI_* for a service process running against this region."""
        return {
            "VI_AMQP_URL": self.amqp_url,
            "VI_DATABASE_URL": self.database_url,
            "VI_MANAGEMENT_URL": self.base.management_url,
            "VI_PSEUDONYM_KEY": PSEUDONYM_KEY,
            **(extra or {}),
        }
