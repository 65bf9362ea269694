"""A throw-away region on the machine's RabbitMQ and PostgreSQL: a virtual host and a
database of its own, beside everything else that runs there, for one test, one
benchmark part or one chaos run; `remove()` deletes both again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from shared import provisioning
from shared.amqp.management import Management
from shared.db import migrate
from shared.region.model import Partner, RegionConfig


@dataclass(frozen=True)
class Sandbox:
    """One throw-away region's vhost and database, and the URLs to reach them."""

    base_amqp_url: str  # the services' login (every node); its vhost is not used
    management_url: str
    base_database_url: str  # any database of the server; the sandbox's is `database`
    vhost: str
    database: str

    @classmethod
    async def create(
        cls,
        *,
        amqp_url: str,
        management_url: str,
        database_url: str,
        vhost: str,
        database: str,
        partners: Iterable[Partner],
        template: str | None = None,
    ) -> Sandbox:
        """Make the vhost (the partners' logins must exist) and the database: a copy of
        the migrated `template`, or else a new one, migrated here."""
        sandbox = cls(amqp_url, management_url, database_url, vhost, database)
        try:
            await provisioning.open_vhost(
                sandbox.management,
                vhost,
                service_user=provisioning.login_of(amqp_url)[0],
                partners=partners,
            )
            await provisioning.create_database(database_url, database, template=template)
            if template is None:
                await migrate.upgrade(sandbox.database_url)
        except BaseException:
            # Leave nothing behind; the error that stopped the set-up is the one to see.
            with contextlib.suppress(Exception):
                await sandbox.management.delete_vhost(vhost)
            with contextlib.suppress(Exception):
                await provisioning.drop_database(database_url, database)
            raise
        return sandbox

    @property
    def management(self) -> Management:
        return Management(self.management_url)

    @property
    def amqp_url(self) -> str:
        """The services' own login, on this vhost."""
        return provisioning.on_vhost(self.base_amqp_url, self.vhost)

    @property
    def database_url(self) -> str:
        return provisioning.with_database(self.base_database_url, self.database)

    def login_url(self, user: str, password: str) -> str:
        """A partner's (or any other) login, on this vhost."""
        return provisioning.with_login(
            self.base_amqp_url, user=user, password=password, vhost=self.vhost
        )

    async def apply(
        self,
        config: RegionConfig,
        *,
        retry_delays_ms: tuple[int, ...],
        delivery_limit: int,
        connection_name: str,
    ) -> None:
        await provisioning.apply_region(
            self.amqp_url,
            self.database_url,
            config,
            retry_delays_ms=retry_delays_ms,
            delivery_limit=delivery_limit,
            connection_name=connection_name,
        )

    async def remove(self) -> None:
        await self.management.delete_vhost(self.vhost)
        await provisioning.drop_database(self.base_database_url, self.database)


async def put_partner_users(api: Management, partners: Iterable[Partner], password: str) -> None:
    """A broker login for each partner (one password for all), without permissions yet."""
    for partner in partners:
        await api.put_user(partner.own_broker_user, password)


async def delete_partner_users(api: Management, partners: Iterable[Partner]) -> None:
    for partner in partners:
        await api.delete_user(partner.own_broker_user)
