"""`verwijsindex region ...`"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from cli.common import run, settings
from shared.amqp.topology import declare_partner_queues
from shared.db import migrate
from shared.index import retirement
from shared.region.model import RegionConfig, RegionConfigError, load_region_file
from shared.region.store import lock_stored_region, store_region
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
                await declare_partner_queues(channel, [p.id for p in config.partner])
            revision, changed = await store_region(uow.conn, config)
            withdrawn, messages = await retirement.withdraw_retired(
                uow.conn, config, runtime.pseudonyms, actor="operator", now=datetime.now(UTC)
            )
            uow.emit(*messages)
        return Applied(revision, changed, withdrawn)
    finally:
        await runtime.close()


@region.command()
@click.argument("file", type=click.Path(path_type=Path))
def apply(file: Path) -> None:
    """Validate FILE (TOML), store it, and declare the broker topology.

    A bad file changes nothing. Applying the same file again is a no-op. Running
    services pick up a change within 10 seconds.

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
    except (migrate.SchemaOutOfDate, RegionConfigError) as exc:
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
