"""`verwijsindex partner ...`: a partner's broker login."""

from __future__ import annotations

import secrets

import click

from cli.common import run, settings
from cli.region import applied_partner, read_applied
from shared.amqp.connection import vhost_of
from shared.amqp.management import (
    Management,
    ManagementError,
    set_up_partner_login,
    set_up_portal_login,
)
from shared.db import migrate
from shared.region.model import PORTAL_ID, Channel, Login, Partner
from shared.region.store import RegionNotApplied

PASSWORD_BYTES = 24  # 32 characters of URL-safe base64


@click.group()
def partner() -> None:
    """Partners' broker logins."""


async def _partner(partner_id: str) -> Partner:
    found = await applied_partner(partner_id)
    if found.channel is Channel.PORTAL:
        raise click.ClickException(
            f'partner {partner_id!r} uses the web portal (channel = "portal"): it has no '
            "broker login of its own. The portal's login is `verwijsindex partner login "
            f"{PORTAL_ID}`."
        )
    if found.login is Login.CERTIFICATE:
        raise click.ClickException(
            f'partner {partner_id!r} logs in by certificate (login = "certificate"): '
            f"its broker user {found.broker_user!r} has no password. "
            "`verwijsindex region apply FILE` sets it up."
        )
    return found


async def _portal_login(password: str) -> tuple[str, bool]:
    config = (await read_applied()).config
    if config.portal is None:
        raise click.ClickException(
            "the applied region config has no [portal] section: add one with the "
            "portal's broker_user and run `verwijsindex region apply FILE` first."
        )
    if config.portal.login is Login.CERTIFICATE:
        raise click.ClickException(
            'the portal logs in by certificate ([portal] login = "certificate"): its '
            "broker user has no password. `verwijsindex region apply FILE` sets it up."
        )
    s = settings()
    api = Management.for_settings(s)
    existed = await api.user_exists(config.portal.broker_user)
    await set_up_portal_login(api, vhost_of(s.amqp_url), config, password=password)
    return config.portal.broker_user, existed


async def _login(partner_id: str, password: str) -> tuple[Partner, bool]:
    found = await _partner(partner_id)
    s = settings()
    api = Management.for_settings(s)
    existed = await api.user_exists(found.own_broker_user)
    await set_up_partner_login(
        api,
        vhost_of(s.amqp_url),
        partner_id=found.id,
        broker_user=found.own_broker_user,
        password=password,
    )
    return found, existed


@partner.command()
@click.argument("partner_id", metavar="ID")
def login(partner_id: str) -> None:
    """Create or rotate the broker login of partner ID, with a new password.

    The password is printed once: hand it to the partner over a secure channel. The
    login may publish to vi.inbound and read partner.<ID>, nothing else. Rotating
    refuses the old password from then on; connections already open stay open until
    they reconnect (close them with `rabbitmqctl close_all_user_connections USER`).
    Partners that log in by certificate need no password: see `region apply`.

    ID `portal` is the web portal's login ([portal] broker_user): it may publish to
    vi.inbound and read partner.portal and the queues of the partners on channel
    "portal".
    """
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    try:
        if partner_id == PORTAL_ID:
            user, existed = run(_portal_login(password))
        else:
            found, existed = run(_login(partner_id, password))
            user = found.own_broker_user
    except (RegionNotApplied, migrate.SchemaOutOfDate, ManagementError) as exc:
        raise click.ClickException(str(exc)) from None
    action = "new password for" if existed else "created"
    click.echo(f"{action} broker login {user!r} (partner {partner_id})")
    click.echo(f"password: {password}")
    click.echo("Shown only this once: store it or hand it over now.", err=True)
