"""`verwijsindex region ...`"""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import run, settings
from shared.amqp.connection import connect_broker, vhost_of
from shared.amqp.management import Management, ManagementError, set_up_partner_login
from shared.amqp.topology import declare_core, declare_partner_queues
from shared.db import migrate
from shared.db.pool import connect as connect_db
from shared.region.model import Login, RegionConfig, RegionConfigError, load_region_file
from shared.region.store import store_region


@click.group()
def region() -> None:
    """The region config: municipalities, partners, lead and informing rules."""


async def _apply(config: RegionConfig) -> tuple[int, bool]:
    s = settings()
    conn = await connect_db(s.database_url)
    try:
        await migrate.ensure_current(conn)
        connection = await connect_broker(s, "verwijsindex-cli")
        try:
            async with connection.channel() as channel:
                await declare_core(
                    channel, retry_delays_ms=s.retry_delays_ms, delivery_limit=s.delivery_limit
                )
                await declare_partner_queues(channel, [p.id for p in config.partner])
        finally:
            await connection.close()
        await _certificate_logins(config)
        # Stored last: services only see partners whose mailboxes exist.
        return await store_region(conn, config)
    finally:
        await conn.close()


async def _certificate_logins(config: RegionConfig) -> None:
    """Partners that log in by certificate get their broker user here: no password,
    a partner's permissions. Password logins are made by `verwijsindex partner login`."""
    s = settings()
    api = Management.for_settings(s)
    for partner in config.partner:
        if partner.login is Login.CERTIFICATE:
            await set_up_partner_login(
                api,
                vhost_of(s.amqp_url),
                partner_id=partner.id,
                broker_user=partner.broker_user,
                password=None,
            )


@region.command()
@click.argument("file", type=click.Path(path_type=Path))
def apply(file: Path) -> None:
    """Validate FILE (TOML), store it, and declare the broker topology.

    Partners with login = "certificate" get a broker user named by their
    certificate's common name (broker_user), without a password.

    A bad file changes nothing. Applying the same file again is a no-op. Running
    services pick up a change within 10 seconds.
    """
    try:
        config = load_region_file(file)
    except RegionConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        revision, changed = run(_apply(config))
    except (migrate.SchemaOutOfDate, ManagementError) as exc:
        raise click.ClickException(str(exc)) from None
    state = "applied" if changed else "unchanged"
    click.echo(
        f"{state}: {config.region.name}, revision {revision}: "
        f"{len(config.municipality)} municipalities, {len(config.partner)} partners"
    )
