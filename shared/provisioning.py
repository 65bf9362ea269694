"""A region's place on the broker and in the database: the URL of a login on a virtual
host, the URL of another database on the same server, creating and dropping a
database, a virtual host with the services' and the partners' permissions, and the
topology and stored config of a region.

The operator CLI uses the URL helpers; the throw-away regions of the tests, the
benchmark and the chaos run (testing/sandbox.py) are made with the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared.amqp.connection import connect
from shared.amqp.management import Management, partner_permissions
from shared.amqp.nodes import first_node, split_nodes
from shared.amqp.topology import declare_core, declare_partner_queues
from shared.db.pool import connect as connect_db
from shared.region.model import Partner, RegionConfig
from shared.region.store import store_region

_DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}
# Full rights on its virtual host for the services' own login.
_EVERYTHING = {"configure": ".*", "write": ".*", "read": ".*"}


def with_login(url: str, *, user: str, password: str, vhost: str | None = None) -> str:
    """`url` (every node of it, on a cluster) with this login and, when given, this
    virtual host instead of the one it names."""
    login = f"{quote(user, safe='')}:{quote(password, safe='')}"
    nodes = []
    for parts in map(urlsplit, split_nodes(url)):
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 5672)
        changed = parts._replace(netloc=f"{login}@{parts.hostname}:{port}")
        if vhost is not None:
            changed = changed._replace(path="/" + quote(vhost, safe=""))
        nodes.append(urlunsplit(changed))
    return ",".join(nodes)


def login_of(amqp_url: str) -> tuple[str, str]:
    """(user, password) of an AMQP URL's first node; RabbitMQ's guest when it names none."""
    parts = urlsplit(first_node(amqp_url))
    return parts.username or "guest", parts.password or "guest"


def on_vhost(amqp_url: str, vhost: str) -> str:
    """`amqp_url`'s own login (every node) on another virtual host."""
    user, password = login_of(amqp_url)
    return with_login(amqp_url, user=user, password=password, vhost=vhost)


def with_database(database_url: str, name: str) -> str:
    """A PostgreSQL URL for database `name` on the server `database_url` points at."""
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def admin_database_url(database_url: str) -> str:
    """The server's `postgres` database, from which databases are created and dropped."""
    return with_database(database_url, "postgres")


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(database_url: str, name: str, *, template: str | None = None) -> None:
    """Create database `name` on the server of `database_url` (a copy of `template`
    when given: a migrated template is much faster to copy than to migrate)."""
    admin = await asyncpg.connect(admin_database_url(database_url))
    try:
        copy = f" TEMPLATE {_identifier(template)}" if template is not None else ""
        await admin.execute(f"CREATE DATABASE {_identifier(name)}{copy}")
    finally:
        await admin.close()


async def drop_database(database_url: str, name: str) -> None:
    """Drop database `name` on the server of `database_url`, closing its connections."""
    admin = await asyncpg.connect(admin_database_url(database_url))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")
    finally:
        await admin.close()


async def open_vhost(
    api: Management, vhost: str, *, service_user: str, partners: Iterable[Partner]
) -> None:
    """Create `vhost`: the services' login may do anything on it, each partner's login
    what the partner guide prescribes (the logins must exist)."""
    await api.put_vhost(vhost)
    await api.set_permissions(vhost, service_user, **_EVERYTHING)
    for partner in partners:
        await api.set_permissions(vhost, partner.own_broker_user, **partner_permissions(partner.id))


async def apply_region(
    amqp_url: str,
    database_url: str,
    config: RegionConfig,
    *,
    retry_delays_ms: tuple[int, ...],
    delivery_limit: int,
    connection_name: str,
) -> None:
    """Declare the region's topology, then store its config: what `verwijsindex region
    apply` does to a fresh region, without the checks against a config applied before."""
    connection = await connect(amqp_url, connection_name)
    try:
        async with connection.channel() as channel:
            await declare_core(
                channel, retry_delays_ms=retry_delays_ms, delivery_limit=delivery_limit
            )
            await declare_partner_queues(channel, config.mailboxes)
    finally:
        await connection.close()
    conn = await connect_db(database_url)
    try:
        await store_region(conn, config)
    finally:
        await conn.close()
