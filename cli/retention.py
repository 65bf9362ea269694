"""`verwijsindex retention ...`"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from cli.common import run, settings
from services.retention.sweep import Sweep, SweepReport
from shared.service import Runtime


@click.group()
def retention() -> None:
    """The time-driven rules: expiry, archive purge, 23rd birthday, escalation, reminders."""


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use ISO 8601 with an offset, e.g. 2028-11-28T09:00:00+01:00"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. 2028-11-28T09:00:00+01:00")
    return parsed


async def _sweep(now: datetime) -> SweepReport:
    runtime = await Runtime.open("verwijsindex-cli", settings())
    try:
        region = await runtime.region.get()
        return await Sweep(runtime.pool, runtime.outbox, region, runtime.pseudonyms).run(now)
    finally:
        await runtime.close()


@retention.command("run")
@click.option(
    "--now", "now_text", metavar="TIMESTAMP", help="Sweep as of this moment (default: now)."
)
def run_sweep(now_text: str | None) -> None:
    """Run one full sweep of every time-driven rule, then exit."""
    now = _parse_now(now_text)
    report = run(_sweep(now))
    click.echo(f"sweep as of {now.isoformat()} done")
    for rule, count in sorted(report.counts.items()):
        click.echo(f"  {rule}: {count}")
    if not report.counts:
        click.echo("  nothing was due")
