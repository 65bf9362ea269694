"""`verwijsindex portal ...`: accounts of the web portal."""

from __future__ import annotations

import secrets
from datetime import timedelta

import click
import pyotp

from cli.common import run, settings
from cli.output import table
from cli.region import applied_partner
from services.portal import accounts, credentials
from services.portal.accounts import AccountExists, Role
from services.portal.settings import PortalSettings
from services.portal.web.admin_routes import activation_link
from shared.clock import utcnow
from shared.db import migrate
from shared.db.audit import audit
from shared.db.pool import connect as connect_db
from shared.region.model import Channel
from shared.region.store import RegionNotApplied

OPERATOR = "operator"


@click.group()
def portal() -> None:
    """Accounts of the web portal (for partners with channel = "portal")."""


@portal.group()
def user() -> None:
    """Portal accounts: add one, list them."""


async def _check_partner(partner_id: str) -> None:
    found = await applied_partner(partner_id, hint=' with channel = "portal"')
    if found.channel is not Channel.PORTAL:
        raise click.ClickException(
            f'partner {partner_id!r} has its own system link (channel = "{found.channel}"): '
            'portal accounts are for partners with channel = "portal".'
        )


async def _add(partner_id: str, email: str, role: Role, name: str, phone: str) -> str:
    await _check_partner(partner_id)
    portal_settings = PortalSettings.from_env()
    conn = await connect_db(settings().database_url)
    try:
        async with conn.transaction():
            invited, token = await accounts.invite(
                conn,
                partner_id=partner_id,
                email=email,
                role=role,
                name=name,
                phone=phone,
                now=utcnow(),
                valid_days=portal_settings.activation_days,
            )
            await audit(
                conn,
                "portal_user_invited",
                partner_id,
                detail={"invited": invited.actor, "by": OPERATOR},
            )
    finally:
        await conn.close()
    return activation_link(portal_settings.base_url, token)


_ROLE = click.Choice([r.value for r in Role])


@user.command("add")
@click.option("--partner", "partner_id", required=True, help='A partner with channel = "portal".')
@click.option("--email", required=True, help="The professional's e-mail address (the login).")
@click.option(
    "--role",
    type=_ROLE,
    default=Role.PROFESSIONAL.value,
    show_default=True,
    help="professional: own meldingen; org_admin: the organisation's meldingen and its accounts.",
)
@click.option("--name", default="", help="Prefills the name (the user can change it).")
@click.option("--phone", default="", help="Prefills the phone number.")
def add(partner_id: str, email: str, role: str, name: str, phone: str) -> None:
    """Create a portal account and print its one-time activation link.

    Hand the link to the professional: it opens a page where they set a password and
    a second factor (TOTP). The link is valid for VI_PORTAL_ACTIVATION_DAYS days (7);
    running the command again for an account not yet activated makes a new link.
    Links start with VI_PORTAL_BASE_URL.
    """
    try:
        link = run(_add(partner_id, email, Role(role), name, phone))
    except (RegionNotApplied, migrate.SchemaOutOfDate) as exc:
        raise click.ClickException(str(exc)) from None
    except AccountExists:
        raise click.ClickException(
            f"an account with e-mail {email!r} exists already (activated or disabled); "
            "its organisation's admin manages it in the portal."
        ) from None
    click.echo(f"account {email} ({role}, partner {partner_id}) invited")
    click.echo(f"activation link: {link}")


async def _users(partner_id: str | None) -> list[list[str]]:
    conn = await connect_db(settings().database_url)
    try:
        await migrate.ensure_current(conn)
        rows = await conn.fetch(
            """SELECT partner_id, email, name, role, status,
                      coalesce(locked_until > now(), false) AS locked
               FROM portal_user WHERE $1::text IS NULL OR partner_id = $1
               ORDER BY partner_id, lower(email)""",
            partner_id,
        )
    finally:
        await conn.close()
    return [
        [
            r["partner_id"],
            r["email"],
            r["name"] or "-",
            r["role"],
            r["status"],
            "yes" if r["locked"] else "no",
        ]
        for r in rows
    ]


@user.command("list")
@click.option("--partner", "partner_id", default=None, help="Only this partner's accounts.")
def list_users(partner_id: str | None) -> None:
    """The portal accounts, with their role and state."""
    try:
        rows = run(_users(partner_id))
    except migrate.SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    if not rows:
        click.echo("no portal accounts")
        return
    click.echo(table(["partner", "email", "name", "role", "status", "locked"], rows))


async def _demo_account(partner_id: str, email: str, name: str) -> tuple[str, str]:
    await _check_partner(partner_id)
    password = secrets.token_urlsafe(12)
    secret = credentials.new_totp_secret()
    now = utcnow()
    conn = await connect_db(settings().database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM portal_user WHERE lower(email) = lower($1) AND partner_id = $2",
                email,
                partner_id,
            )
            invited, _ = await accounts.invite(
                conn,
                partner_id=partner_id,
                email=email,
                role=Role.ORG_ADMIN,
                name=name,
                now=now,
                valid_days=1,
            )
            await conn.execute(
                "UPDATE portal_user SET totp_secret = $2 WHERE id = $1", invited.id, secret
            )
            await accounts.activate(
                conn,
                invited.id,
                name=name,
                phone="",
                password_hash=credentials.hash_password(password),
                totp_step=credentials.totp_step(now - timedelta(minutes=1)),
                now=now,
            )
    finally:
        await conn.close()
    return password, secret


@portal.command("demo-account")
@click.option("--partner", "partner_id", required=True, help='A partner with channel = "portal".')
@click.option("--email", required=True)
@click.option("--name", default="Demo gebruiker", show_default=True)
def demo_account(partner_id: str, email: str, name: str) -> None:
    """For a local demo only: (re)create an activated org-admin account with a new
    password and TOTP secret, and print them. Real accounts are made with `user add`
    and activated by their owner."""
    password, secret = run(_demo_account(partner_id, email, name))
    click.echo(f"login: {email}")
    click.echo(f"password: {password}")
    click.echo(
        f"TOTP secret: {secret}  (add it to an authenticator app, or run "
        f"`verwijsindex portal code {secret}`)"
    )


@portal.command("code")
@click.argument("secret")
def code(secret: str) -> None:
    """Print the current TOTP code of SECRET (for a local demo without an
    authenticator app)."""
    click.echo(pyotp.TOTP(secret).now())
