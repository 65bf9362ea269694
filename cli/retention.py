"""`verwijsindex retention ...`"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click

from cli.common import run, settings
from services.retention.sweep import STEPS, Sweep, SweepReport, rehearse
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


# A sweep as of a later moment than this acts on the future for real (meldingen end,
# partners are told): the operator confirms it.
AHEAD_WITHOUT_ASKING = timedelta(days=1)


def _at_a_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_future(now: datetime) -> None:
    ahead = now - datetime.now(UTC)
    if ahead <= AHEAD_WITHOUT_ASKING:
        return
    days = round(ahead / timedelta(days=1))
    warning = (
        f"--now is {days} days ahead of the clock: what is due by then ends for real and "
        "partners are told."
    )
    if not _at_a_terminal():
        raise click.ClickException(
            f"{warning}\nAdd --yes to sweep anyway, or look first with --dry-run."
        )
    click.confirm(f"{warning} Sweep anyway?", abort=True)


async def _sweep(now: datetime, *, dry_run: bool) -> SweepReport:
    runtime = await Runtime.open("verwijsindex-cli", settings())
    try:
        region = await runtime.region.get()
        if dry_run:
            return await rehearse(runtime.pool, region, runtime.pseudonyms, now)
        return await Sweep(runtime.pool, runtime.outbox, region, runtime.pseudonyms).run(now)
    finally:
        await runtime.close()


@retention.command("run")
@click.option(
    "--now", "now_text", metavar="TIMESTAMP", help="Sweep as of this moment (default: now)."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what the sweep would do, per rule, and change nothing (the same sweep in "
    "a transaction that is rolled back).",
)
@click.option("--yes", is_flag=True, help="Do not ask before sweeping as of a future moment.")
def run_sweep(now_text: str | None, dry_run: bool, yes: bool) -> None:
    """Run one full sweep of every time-driven rule, then exit.

    A --now more than a day ahead of the clock ends meldingen for real: it needs --yes
    (or a confirmation). The dedup records (inbox, sent e-mails) expire by the real
    clock whatever --now says.
    """
    now = _parse_now(now_text)
    if not (dry_run or yes):
        _confirm_future(now)
    report = run(_sweep(now, dry_run=dry_run))
    if dry_run:
        click.echo(f"dry run as of {now.isoformat()}: nothing was changed. A sweep would do:")
    else:
        click.echo(f"sweep as of {now.isoformat()} done:")
    for name, meaning in STEPS:
        click.echo(f"  {name}: {report.counts.get(name, 0)} ({meaning})")
