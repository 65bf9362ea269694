"""A throw-away region for one benchmark part (testing/sandbox.py: a fresh vhost, a
fresh migrated database) with the benchmark's region config, and partner broker logins
(demo style: a login per partner, with exactly the permissions the partner guide
prescribes)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.amqp.management import Management
from shared.region.model import Partner, RegionConfig, parse_region
from shared.settings import Settings
from testing.sandbox import Sandbox, delete_partner_users, put_partner_users

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
    created: list[Partner] = field(default_factory=list)

    @property
    def management(self) -> Management:
        return Management(self.base.management_url)

    async def create(self) -> RegionConfig:
        region = parse_region(region_document(self.prefix))
        for partner in region.partner:  # one by one: `delete` removes what was made
            await put_partner_users(self.management, [partner], self.password)
            self.created.append(partner)
        return region

    async def delete(self) -> None:
        await delete_partner_users(self.management, self.created)
        self.created.clear()


@dataclass
class BenchEnv:
    """One isolated region: vhost + database, both removed by `close()`."""

    base: Settings
    logins: Logins
    region: RegionConfig
    sandbox: Sandbox

    @classmethod
    async def create(cls, base: Settings, logins: Logins, region: RegionConfig) -> BenchEnv:
        suffix = uuid.uuid4().hex[:10]
        sandbox = await Sandbox.create(
            amqp_url=base.amqp_url,
            management_url=base.management_url,
            database_url=base.database_url,
            vhost=f"vi-bench-{suffix}",
            database=f"vi_bench_{suffix}",
            partners=region.partner,
        )
        try:
            await sandbox.apply(
                region,
                retry_delays_ms=base.retry_delays_ms,
                delivery_limit=base.delivery_limit,
                connection_name="bench-setup",
            )
        except BaseException:
            await sandbox.remove()
            raise
        return cls(base, logins, region, sandbox)

    async def close(self) -> None:
        await self.sandbox.remove()

    @property
    def vhost(self) -> str:
        return self.sandbox.vhost

    @property
    def database(self) -> str:
        return self.sandbox.database

    @property
    def database_url(self) -> str:
        return self.sandbox.database_url

    @property
    def amqp_url(self) -> str:
        """The services' own login, on this region's vhost."""
        return self.sandbox.amqp_url

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].own_broker_user
        return self.sandbox.login_url(user, self.logins.password)

    def service_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """VI_* for a service process running against this region."""
        return {
            "VI_AMQP_URL": self.amqp_url,
            "VI_DATABASE_URL": self.database_url,
            "VI_MANAGEMENT_URL": self.base.management_url,
            "VI_PSEUDONYM_KEY": PSEUDONYM_KEY,
            **(extra or {}),
        }
