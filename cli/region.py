"""`verwijsindex region ...`"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.common import run, settings
from cli.output import emit_json, table
from shared.amqp.connection import vhost_of
from shared.amqp.management import (
    Management,
    ManagementError,
    refresh_portal_login,
    set_up_partner_login,
)
from shared.amqp.topology import declare_partner_queues
from shared.announce import announce
from shared.db import migrate
from shared.db.pool import connect as connect_db
from shared.index import retirement
from shared.region.model import Login, Partner, RegionConfig, RegionConfigError, load_region_file
from shared.region.store import (
    AppliedRegion,
    RegionNotApplied,
    applied_region,
    lock_stored_region,
    store_region,
)
from shared.service import Runtime


@click.group()
def region() -> None:
    """The region config: municipalities, partners, lead and informing rules."""


@dataclass(frozen=True)
class Applied:
    revision: int
    changed: bool
    withdrawn: int  # active meldingen of retired partners withdrawn by this apply


async def _apply(config: RegionConfig) -> Applied:
    """In one transaction, holding the stored config's lock: refuse to drop a partner
    that has meldingen, declare the topology, store the config, and withdraw what
    retired partners still have active (see shared.index.retirement)."""
    runtime = await Runtime.open("verwijsindex-cli", settings())
    try:
        async with runtime.outbox.unit_of_work() as uow:
            stored = await lock_stored_region(uow.conn)
            kept = await retirement.dropped_with_meldingen(uow.conn, stored, config)
            if kept:
                counts = ", ".join(f"{pid} {n}" for pid, n in sorted(kept.items()))
                raise RegionConfigError(
                    f"nothing changed: partners dropped from the file still have meldingen "
                    f"(active or archived): {counts}.\nKeep a partner that leaves the "
                    "region in the file with `retired = true`."
                )
            # Declared before the config is stored: services only see partners whose
            # mailboxes exist (a retired partner keeps its own, for its receipts).
            async with runtime.connection.channel() as channel:
                await declare_partner_queues(channel, config.mailboxes)
            await _certificate_logins(config)
            await _portal_login(config)
            revision, changed = await store_region(uow.conn, config)
            withdrawn, decisions = await retirement.withdraw_retired(
                uow.conn, config, runtime.pseudonyms, actor="operator", now=datetime.now(UTC)
            )
            uow.emit(*announce(config, decisions))
        return Applied(revision, changed, withdrawn)
    finally:
        await runtime.close()


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
                broker_user=partner.own_broker_user,
                password=None,
            )


async def _portal_login(config: RegionConfig) -> None:
    """The portal's login gets read access to the mailboxes of the partners now on
    channel "portal" (see shared.amqp.management.refresh_portal_login)."""
    if config.portal is not None:
        s = settings()
        await refresh_portal_login(Management.for_settings(s), vhost_of(s.amqp_url), config)


@region.command()
@click.argument("file", type=click.Path(path_type=Path))
def apply(file: Path) -> None:
    """Validate FILE (TOML), store it, and declare the broker topology.

    Partners with login = "certificate" get a broker user named by their
    certificate's common name (broker_user), without a password.

    A bad file changes nothing. Applying the same file again is a no-op. Running
    services pick up a change within 10 seconds.

    With a [portal] section, the portal's own mailbox partner.portal is declared too,
    and the portal's login may read the mailboxes of the partners on channel
    "portal" (with login = "certificate" in [portal] it is created here).

    A partner that leaves the region stays in the file with `retired = true`: its
    active meldingen are withdrawn (archived, as `risk_ended`) by this command. A
    partner that still has meldingen cannot be dropped from the file.
    """
    try:
        config = load_region_file(file)
    except RegionConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        applied = run(_apply(config))
    except (migrate.SchemaOutOfDate, RegionConfigError, ManagementError) as exc:
        raise click.ClickException(str(exc)) from None
    state = "applied" if applied.changed else "unchanged"
    retired = [p.id for p in config.partner if p.retired]
    click.echo(
        f"{state}: {config.region.name}, revision {applied.revision}: "
        f"{len(config.municipality)} municipalities, {len(config.partner)} partners"
        + (f" ({len(retired)} retired: {', '.join(retired)})" if retired else "")
    )
    if applied.withdrawn:
        click.echo(
            f"withdrawn: {applied.withdrawn} active melding(en) of retired partners "
            "(archived as risk_ended)"
        )


async def read_applied() -> AppliedRegion:
    """The applied region config, or an error that says to apply one."""
    conn = await connect_db(settings().database_url)
    try:
        await migrate.ensure_current(conn)
        found = await applied_region(conn)
    finally:
        await conn.close()
    if found is None:
        raise RegionNotApplied(
            "no region config is applied yet: run `verwijsindex region apply FILE`"
        )
    return found


async def applied_partner(partner_id: str, *, hint: str = "") -> Partner:
    """A partner of the applied region config, or an error that says to add it (the
    `hint` says what kind of partner the command wants)."""
    found = (await read_applied()).config.partners_by_id.get(partner_id)
    if found is None:
        raise click.ClickException(
            f"no partner {partner_id!r} in the applied region config: add it to the region "
            f"file{hint} and run `verwijsindex region apply FILE` first."
        )
    return found


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return "-" if value is None else str(value)


def _entries(entries: list[dict[str, Any]]) -> str:
    headers = list(entries[0])
    return table(headers, [[_cell(e[h]) for h in headers] for e in entries])


def _render(applied: AppliedRegion) -> str:
    doc = applied.config.model_dump(mode="json")
    applied_at = applied.applied_at.isoformat(timespec="seconds")
    width = max(len(key) for key in doc["region"])
    return "\n".join(
        [
            f"revision {applied.revision}, applied {applied_at}",
            "",
            "[region]",
            *(f"  {key.ljust(width)}  {_cell(value)}" for key, value in doc["region"].items()),
            "",
            f"[[municipality]] ({len(doc['municipality'])})",
            _entries(doc["municipality"]),
            "",
            f"[[partner]] ({len(doc['partner'])})",
            _entries(doc["partner"]),
            *(
                ["", "[portal]", f"  broker_user  {doc['portal']['broker_user']}"]
                if doc["portal"]
                else []
            ),
        ]
    )


@region.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(as_json: bool) -> None:
    """The region config the services run on: what was last applied, with its revision."""
    applied = run(read_applied())
    if as_json:
        emit_json(
            {
                "revision": applied.revision,
                "applied_at": applied.applied_at.isoformat(),
                "config": applied.config.model_dump(mode="json"),
            }
        )
    else:
        click.echo(_render(applied))
