"""`verwijsindex portal ...`: accounts of the web portal."""

from __future__ import annotations

import secrets
from datetime import timedelta

import click
import pyotp

from cli.common import run, settings
from cli.output import table
from cli.region import applied_partner, read_applied
from services.portal import accounts, credentials
from services.portal.accounts import COORDINATOR_PARTNER, AccountExists, Role
from services.portal.auditing import COORDINATOR_ACTOR
from services.portal.settings import PortalSettings
from services.portal.web.admin_routes import activation_link
from shared.clock import utcnow
from shared.db import migrate
from shared.db.journal import Journal
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


async def _check_municipalities(codes: tuple[str, ...]) -> None:
    known = (await read_applied()).config.municipalities_by_code
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise click.ClickException(
            f"no municipality {', '.join(unknown)} in the applied region config "
            f"(it has {', '.join(sorted(known))}): add it to the region file and run "
            "`verwijsindex region apply FILE` first."
        )


async def _scope(
    role: Role, partner_id: str | None, codes: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """The account's partner and municipalities, checked against the applied region."""
    if role is Role.COORDINATOR:
        if partner_id is not None or not codes:
            raise click.UsageError(
                "a coordinator belongs to no partner: leave out --partner and give "
                "--municipality CODE (once per municipality)."
            )
        await _check_municipalities(codes)
        return COORDINATOR_PARTNER, tuple(dict.fromkeys(codes))
    if partner_id is None or codes:
        raise click.UsageError(
            f"a {role.value} account belongs to one partner: give --partner ID and no "
            "--municipality (that is for --role coordinator)."
        )
    await _check_partner(partner_id)
    return partner_id, ()


async def _add(
    partner_id: str | None,
    email: str,
    role: Role,
    name: str,
    phone: str,
    codes: tuple[str, ...],
) -> tuple[str, str]:
    owner, municipalities = await _scope(role, partner_id, codes)
    portal_settings = PortalSettings.from_env()
    conn = await connect_db(settings().database_url)
    try:
        async with conn.transaction():
            invited, token = await accounts.invite(
                conn,
                partner_id=owner,
                email=email,
                role=role,
                name=name,
                phone=phone,
                now=utcnow(),
                valid_days=portal_settings.activation_days,
                municipalities=municipalities,
            )
            journal = Journal()
            journal.audit(
                "portal_user_invited",
                COORDINATOR_ACTOR if invited.is_coordinator else owner,
                detail={
                    "invited": invited.actor,
                    "by": OPERATOR,
                    "municipalities": list(municipalities),
                },
            )
            await journal.write(conn)
    finally:
        await conn.close()
    scope = f"municipalities {', '.join(municipalities)}" if municipalities else f"partner {owner}"
    return scope, activation_link(portal_settings.base_url, token)


_ROLE = click.Choice([r.value for r in Role])


@user.command("add")
@click.option(
    "--partner",
    "partner_id",
    default=None,
    help='A partner with channel = "portal" (not for a coordinator).',
)
@click.option("--email", required=True, help="The person's e-mail address (the login).")
@click.option(
    "--role",
    type=_ROLE,
    default=Role.PROFESSIONAL.value,
    show_default=True,
    help="professional: own meldingen; org_admin: the organisation's meldingen and its "
    "accounts; coordinator: the match coordinator of the municipalities given with "
    "--municipality (matches, assigning the lead, participation).",
)
@click.option(
    "--municipality",
    "codes",
    multiple=True,
    metavar="CODE",
    help="With --role coordinator: a municipality code of the region (4 digits) the "
    "coordinator works for; repeat it for more than one.",
)
@click.option("--name", default="", help="Prefills the name (the user can change it).")
@click.option("--phone", default="", help="Prefills the phone number.")
def add(
    partner_id: str | None, email: str, role: str, name: str, phone: str, codes: tuple[str, ...]
) -> None:
    """Create a portal account and print its one-time activation link.

    An account belongs to a partner on channel "portal" (--partner), or, for
    --role coordinator, to one or more municipalities (--municipality, repeated):

    \b
      verwijsindex portal user add --partner de-linde --email ib@delinde.example
      verwijsindex portal user add --role coordinator --municipality 0363 \\
          --email regie@amsterdam.example

    Hand the link to the person: it opens a page where they set a password and
    a second factor (TOTP). The link is valid for VI_PORTAL_ACTIVATION_DAYS days (7);
    running the command again for an account not yet activated makes a new link.
    Links start with VI_PORTAL_BASE_URL.
    """
    try:
        scope, link = run(_add(partner_id, email, Role(role), name, phone, codes))
    except (RegionNotApplied, migrate.SchemaOutOfDate) as exc:
        raise click.ClickException(str(exc)) from None
    except AccountExists:
        raise click.ClickException(
            f"an account with e-mail {email!r} exists already (activated or disabled); "
            "its organisation's admin manages it in the portal."
        ) from None
    click.echo(f"account {email} ({role}, {scope}) invited")
    click.echo(f"activation link: {link}")


async def _users(partner_id: str | None) -> list[list[str]]:
    conn = await connect_db(settings().database_url)
    try:
        await migrate.ensure_current(conn)
        rows = await conn.fetch(
            """SELECT partner_id, email, name, role, status, municipalities,
                      coalesce(locked_until > now(), false) AS locked
               FROM portal_user WHERE $1::text IS NULL OR partner_id = $1
               ORDER BY partner_id, lower(email)""",
            partner_id,
        )
    finally:
        await conn.close()
    return [
        [
            "gemeente " + ", ".join(r["municipalities"])
            if r["role"] == Role.COORDINATOR
            else r["partner_id"],
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


async def _demo_account(
    partner_id: str | None, codes: tuple[str, ...], email: str, name: str
) -> tuple[str, str]:
    role = Role.COORDINATOR if codes else Role.ORG_ADMIN
    owner, municipalities = await _scope(role, partner_id, codes)
    password = secrets.token_urlsafe(12)
    secret = credentials.new_totp_secret()
    now = utcnow()
    conn = await connect_db(settings().database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM portal_user WHERE lower(email) = lower($1) AND partner_id = $2",
                email,
                owner,
            )
            invited, _ = await accounts.invite(
                conn,
                partner_id=owner,
                email=email,
                role=role,
                name=name,
                now=now,
                valid_days=1,
                municipalities=municipalities,
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
@click.option("--partner", "partner_id", default=None, help='A partner with channel = "portal".')
@click.option(
    "--municipality",
    "codes",
    multiple=True,
    metavar="CODE",
    help="Instead of --partner: a match coordinator account for this municipality "
    "(repeat for more).",
)
@click.option("--email", required=True)
@click.option("--name", default="Demo gebruiker", show_default=True)
def demo_account(partner_id: str | None, codes: tuple[str, ...], email: str, name: str) -> None:
    """For a local demo only: (re)create an activated account with a new password and
    TOTP secret, and print them: an org admin of --partner, or the coordinator of the
    --municipality codes. Real accounts are made with `user add` and activated by
    their owner."""
    password, secret = run(_demo_account(partner_id, codes, email, name))
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
