"""`verwijsindex demo ...`: demo broker logins and a short walk through the system."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import click

from cli.common import run, settings
from cli.demo_onboarding import onboarding_beside_live
from cli.demo_pki import TEST_ONLY, DemoCA
from shared.amqp.connection import vhost_of
from shared.amqp.management import Management, set_up_partner_login, set_up_portal_login
from shared.contract.validation import example_bsn
from shared.partner_client import PartnerClient, Received
from shared.provisioning import with_login
from shared.region.model import PORTAL_ID, Channel, RegionConfigError, load_region_file

DEFAULT_REGION = Path("region/demo.toml")


def _demo_url(amqp_url: str, user: str) -> str:
    """A demo partner's login (its password is its name), on the services' vhost."""
    return with_login(amqp_url, user=user, password=user)


@click.group()
def demo() -> None:
    """Try the system with the demo region (not for production)."""


@demo.command()
@click.option(
    "--region",
    "region_file",
    type=click.Path(path_type=Path),
    default=DEFAULT_REGION,
    show_default=True,
)
def users(region_file: Path) -> None:
    """Create a broker login for every partner, password = the login (DEMO ONLY), and
    print each login with its password and AMQP URL.

    Each login gets the permissions the partner guide prescribes: publish to
    vi.inbound, read its own partner.<id> queue, declare nothing. With a [portal]
    section the portal's login is made too (shown as partner "portal"): it reads
    partner.portal and the queues of the partners on channel "portal".
    """
    try:
        config = load_region_file(region_file)
    except RegionConfigError as exc:
        raise click.ClickException(str(exc)) from None
    s = settings()
    api = Management.for_settings(s)
    vhost = vhost_of(s.amqp_url)

    # Partners on channel "portal" have no login of their own: the portal's serves them.
    logins = [(p.id, p.own_broker_user) for p in config.partner if p.channel is Channel.AMQP]

    async def go() -> None:
        for partner_id, user in logins:
            await set_up_partner_login(
                api, vhost, partner_id=partner_id, broker_user=user, password=user
            )
        if config.portal is not None:
            await set_up_portal_login(api, vhost, config, password=config.portal.broker_user)

    run(go())
    if config.portal is not None:
        logins.append((PORTAL_ID, config.portal.broker_user))
    rows = [("partner", "login", "password", "AMQP URL")]
    rows += [(pid, user, user, _demo_url(s.amqp_url, user)) for pid, user in logins]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    click.echo("Demo partner logins (the password is the login; demo only):")
    for partner_id, login, password, url in rows:
        click.echo(
            f"  {partner_id:<{widths[0]}}  {login:<{widths[1]}}  {password:<{widths[2]}}  {url}"
        )


def _show(partner: str, got: Received) -> None:
    body = got.body
    kind = body.get("type")
    if kind == "receipt":
        errors = ", ".join(f"{e['code']} at {e['loc']}" for e in body.get("errors", []))
        inform = f"  inform: {' + '.join(body['inform'])}" if body.get("inform") else ""
        about = f" for {body['melding_ref']}" if body.get("melding_ref") else ""
        click.echo(
            f"  <- {partner}: receipt {body['status']}{about}"
            f"{'  (' + errors + ')' if errors else ''}{inform}"
        )
    elif kind == "match.notice":
        others = ", ".join(
            f"{c['organisation']} ({c['reporter']['name']})" for c in body["counterparts"]
        )
        click.echo(f"  <- {partner}: MATCH on {body['melding_ref']} with {others}")
    elif kind == "family.notice":
        other = body["counterpart"]
        why = "a shared parent" if body["relation"] == "parent" else "a shared address"
        click.echo(
            f"  <- {partner}: FAMILY MATCH on {body['melding_ref']} ({why}) with"
            f" {other['organisation']} ({other['reporter']['name']})"
        )
    elif kind == "person.lookup":
        # The one message with a BSN; the demo does not print it.
        click.echo(f"  <- {partner}: person.lookup {body['lookup_id']} (family facts asked)")
    elif kind == "regie.notice":
        lead = body["lead"]["organisation"] if body.get("lead") else "nobody"
        click.echo(
            f"  <- {partner}: lead for {body['melding_ref']}: {lead}"
            f"{' (escalated)' if body.get('escalated') else ''}"
        )
    else:
        click.echo(f"  <- {partner}: {kind} {json.dumps(body, ensure_ascii=False)}")


async def _drain(
    clients: dict[str, PartnerClient], seconds: float, families: dict[str, list[str]]
) -> None:
    async def one(pid: str, client: PartnerClient) -> None:
        for got in await client.quiet(seconds):
            _show(pid, got)
            if got.type == "person.lookup":
                await _answer_lookup(client, got, families)

    await asyncio.gather(*(one(pid, c) for pid, c in clients.items()))


async def _answer_lookup(
    register: PartnerClient, lookup: Received, families: dict[str, list[str]]
) -> None:
    """The demo register answers a lookup at once with the family facts it knows."""
    bsn = lookup.body["bsn"]
    await register.send(
        {
            "type": "person.family",
            "lookup_id": lookup.body["lookup_id"],
            "bsn": bsn,
            "parents": families.get(bsn, []),
            "address": {"id": "0363200000123456", "institutional": False},
        }
    )
    click.echo(f"  -> {register.partner_id}: person.family for {lookup.body['lookup_id']}")


async def _traffic(region_file: Path, wait: float) -> None:
    config = load_region_file(region_file)
    s = settings()
    wanted = ["regenboog", "jt-noord", "ggd-jgz", "brp"]
    clients = {}
    for pid in wanted:
        partner = config.partners_by_id[pid]
        client = PartnerClient(
            _demo_url(s.amqp_url, partner.own_broker_user),
            pid,
            partner.own_broker_user,
        )
        await client.start()
        clients[pid] = client
    now = datetime.now(UTC).isoformat(timespec="seconds")
    # Fresh youths every run, so the walk-through can be repeated.
    seed = secrets.randbelow(10**7)
    bsn = example_bsn(seed)
    youth = {"bsn": bsn, "birth_date": "2013-03-14", "municipality": "0363"}
    stamp = f"{seed:07d}"
    # The pupil's younger sister: one parent in common, by the register's facts.
    sister = example_bsn(seed + 10**7)
    families = {bsn: [example_bsn(seed + 2 * 10**7)], sister: [example_bsn(seed + 2 * 10**7)]}
    steps: list[tuple[str, str, dict[str, object]]] = [
        (
            "De Regenboog registers a melding on a pupil",
            "regenboog",
            {
                "type": "melding.register",
                "melding_ref": f"RB-{stamp}",
                "youth": youth,
                "reporter": {"name": "J. de Vries", "email": "j.devries@regenboog.example"},
                "reported_at": now,
            },
        ),
        (
            "Jeugdteam Noord registers on the same youth: a match",
            "jt-noord",
            {
                "type": "melding.register",
                "melding_ref": f"JTN-{stamp}",
                "youth": youth,
                "reporter": {
                    "name": "A. Jansen",
                    "email": "a.jansen@jtnoord.example",
                    "phone": "+31201234567",
                },
                "reported_at": now,
            },
        ),
        (
            "The GGD registers on the pupil's younger sister: a family match",
            "ggd-jgz",
            {
                "type": "melding.register",
                "melding_ref": f"GGD-{stamp}-Z",
                "youth": {"bsn": sister, "birth_date": "2019-02-11", "municipality": "0363"},
                "reporter": {"name": "M. Visser", "email": "m.visser@ggd.example"},
                "reported_at": now,
            },
        ),
        (
            "The GGD registers on a youth without a BSN (no match)",
            "ggd-jgz",
            {
                "type": "melding.register",
                "melding_ref": f"GGD-{stamp}",
                "youth": {
                    "surname": f"Bakker-{stamp}",
                    "sex": "F",
                    "birth_date": "2019-07-02",
                    "municipality": "0344",
                },
                "reporter": {"name": "M. Visser", "email": "m.visser@ggd.example"},
                "reported_at": now,
            },
        ),
        (
            "De Regenboog sends a message with two mistakes",
            "regenboog",
            {
                "type": "melding.register",
                "melding_ref": f"RB-{stamp}-2",
                "youth": {"bsn": "123456789", "birth_date": "2012-01-01", "municipality": "9999"},
                "reporter": {"name": "J. de Vries", "email": "j.devries@regenboog.example"},
                "reported_at": now,
            },
        ),
        (
            "The population register reports that the youth moved to Rotterdam",
            "brp",
            {"type": "person.moved", "bsn": bsn, "municipality": "0599", "moved_at": now},
        ),
    ]
    try:
        for title, pid, body in steps:
            click.echo(f"\n-> {title}  [{pid} sends {body['type']}]")
            await clients[pid].send(body)
            await _drain(clients, wait, families)
        click.echo(
            "\n-> The GGD loads its archive as an onboarding load while De Regenboog"
            " registers live  [ggd-jgz sends onboard.melding.register]"
        )
        await onboarding_beside_live(clients["ggd-jgz"], clients["regenboog"], now)
    finally:
        for client in clients.values():
            await client.close()


@demo.command()
@click.option(
    "--region",
    "region_file",
    type=click.Path(path_type=Path),
    default=DEFAULT_REGION,
    show_default=True,
)
@click.option(
    "--wait", default=1.5, show_default=True, help="Seconds to wait for answers per step."
)
def traffic(region_file: Path, wait: float) -> None:
    """Act as the demo partners: register meldingen, make a match and a family match
    (the demo register answers lookups), send a bad message, report a move, load an
    archive as an onboarding load beside live traffic, and print every answer, then
    the e-mails written."""
    run(_traffic(region_file, wait))
    mail_dir = settings().mail_dir
    mails = sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)[-12:]
    click.echo(f"\nE-mails (newest in {mail_dir}):")
    for path in mails:
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        click.echo(f"  to {mail['To']}: {mail['Subject']}")
    if not mails:
        click.echo("  none yet (is the notifier running?)")


DEMO_SERVER_NAMES = ("localhost", "127.0.0.1", "rabbitmq")


@demo.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--region",
    "region_file",
    type=click.Path(path_type=Path),
    default=DEFAULT_REGION,
    show_default=True,
    help="Partners to make client certificates for.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=DEMO_SERVER_NAMES,
    show_default=True,
    help="Name (or IP address) the broker is reached by; repeat for several.",
)
@click.option(
    "--services-user",
    default="verwijsindex",
    show_default=True,
    help="Common name of the services' client certificate (their broker user).",
)
@click.option("--days", default=365, show_default=True, help="Validity of every certificate.")
def certs(
    directory: Path, region_file: Path, hosts: tuple[str, ...], services_user: str, days: int
) -> None:
    """Make a demo CA and certificates for AMQPS in DIRECTORY (FOR TESTING ONLY).

    Writes ca.pem; server.pem/.key for the broker (for every --host); services.pem/.key
    for the services; and partners/<id>.pem/.key for every partner of the region, with
    the partner's broker_user as common name (certificate login). In production use
    PKIoverheid certificates instead (docs/operations.md).
    """
    try:
        config = load_region_file(region_file)
    except RegionConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if (directory / "ca.pem").exists():
        raise click.ClickException(
            f"{directory} already holds demo certificates; remove it or choose another directory."
        )
    ca = DemoCA(days=days)
    ca.write(directory)
    ca.issue(hosts[0], server_names=hosts, days=days).write(directory, "server")
    ca.issue(services_user, days=days).write(directory, "services")
    own_logins = [p for p in config.partner if p.channel is Channel.AMQP]
    for partner in own_logins:
        ca.issue(partner.own_broker_user, days=days).write(directory / "partners", partner.id)
    if config.portal is not None:
        # The web portal logs in by certificate like a partner system does.
        ca.issue(config.portal.broker_user, days=days).write(directory, "portal")
    click.echo(
        f"{TEST_ONLY}: a demo CA, a broker certificate for {', '.join(hosts)}, one for "
        f"the services (CN={services_user}), "
        + (f"the portal (CN={config.portal.broker_user}), " if config.portal else "")
        + f"and {len(own_logins)} partner "
        f"certificates, in {directory}"
    )
