"""`verwijsindex stats`"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import click

from cli.common import run, settings
from cli.output import table
from shared.db.pool import connect as connect_db
from shared.stats_report import COLUMNS, FAMILY_COLUMNS, cells, present

HEADERS = [
    "month",
    "sector",
    "municipality",
    *COLUMNS,
    "informed_share",
    "deferred_share",
    "open_share",
    *FAMILY_COLUMNS,
]


def _month(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter("use YYYY-MM, e.g. 2026-11") from None


@click.command()
@click.option("--from", "since", metavar="YYYY-MM", help="First month to include.")
@click.option("--to", "until", metavar="YYYY-MM", help="Last month to include.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table.")
def stats(since: str | None, until: str | None, as_csv: bool) -> None:
    """Meldingen registered, matches formed and families informed (or deferred, or
    still open), per month, sector and municipality. Counts below 5 show as <5.

    A match counts once for every sector taking part; informing is counted in the
    month the melding was registered. Family matches (family_parent, family_address)
    count once for every sector and municipality taking part.
    """

    async def go() -> list[dict[str, str]]:
        conn = await connect_db(settings().database_url)
        try:
            return [present(c) for c in await cells(conn, since=_month(since), until=_month(until))]
        finally:
            await conn.close()

    rows = run(go())
    if as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HEADERS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    elif rows:
        click.echo(table(HEADERS, [[r[h] for h in HEADERS] for r in rows]))
    else:
        click.echo("no figures yet")
