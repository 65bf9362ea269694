"""Who takes part in a municipality's index: per organisation and per sector the
meldingen the index keeps, how many of them are in a match, the share whose family was
informed, and the last activity; and meldingen and matches per month.

Counts below 5 are suppressed and shares shown only when every count in them is 5 or
more, exactly as `verwijsindex stats` does (shared/stats_report.py). The monthly
figures come from the same anonymous statistics facts as `stats`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from shared.dates import amsterdam_date
from shared.db.pool import Conn
from shared.region.model import RegionConfig
from shared.stats_report import Cell, cells, share, suppress

MONTHS_SHOWN = 12


@dataclass(frozen=True)
class Participation:
    organisation: str
    sector: str
    meldingen: int
    matched: int
    informed: int
    # A day, not a moment: for a small organisation the time would say too much.
    last_activity: date | None

    def shown(self) -> dict[str, str]:
        """The figures as they may be shown: small counts suppressed."""
        return {
            "meldingen": suppress(self.meldingen),
            "matched": suppress(self.matched),
            "informed_share": share(self.informed, self.meldingen),
        }


@dataclass(frozen=True)
class Month:
    month: date
    meldingen: int
    matches: int


async def per_organisation(
    conn: Conn, region: RegionConfig, codes: Sequence[str]
) -> list[Participation]:
    rows = await conn.fetch(
        """SELECT partner_id, count(*)::int AS meldingen,
                  count(*) FILTER (WHERE matched)::int AS matched,
                  count(*) FILTER (WHERE informed)::int AS informed,
                  max(greatest(registered_at, ended_at)) AS last_activity
           FROM coordinator_melding WHERE municipality = ANY($1::text[])
           GROUP BY partner_id""",
        list(codes),
    )
    partners = region.partners_by_id
    found = []
    for r in rows:
        partner = partners.get(r["partner_id"])
        found.append(
            Participation(
                organisation=partner.name if partner else r["partner_id"],
                sector=partner.sector.value if partner else "",
                meldingen=r["meldingen"],
                matched=r["matched"],
                informed=r["informed"],
                last_activity=amsterdam_date(r["last_activity"]) if r["last_activity"] else None,
            )
        )
    return sorted(found, key=lambda p: (p.sector, p.organisation))


def per_sector(rows: Iterable[Participation]) -> list[Participation]:
    """The organisations' figures added up per sector (before suppression)."""
    sums: dict[str, Participation] = {}
    for p in rows:
        before = sums.get(p.sector)
        if before is None:
            sums[p.sector] = Participation(
                p.sector, p.sector, p.meldingen, p.matched, p.informed, p.last_activity
            )
            continue
        latest = max(
            (t for t in (before.last_activity, p.last_activity) if t is not None), default=None
        )
        sums[p.sector] = Participation(
            p.sector,
            p.sector,
            before.meldingen + p.meldingen,
            before.matched + p.matched,
            before.informed + p.informed,
            latest,
        )
    return [sums[k] for k in sorted(sums)]


def months(facts: Iterable[Cell], codes: Sequence[str], last: date) -> list[Month]:
    """Meldingen registered and matches formed per month in these municipalities, for
    the MONTHS_SHOWN months up to `last` (a first of the month), empty months included."""
    wanted = set(codes)
    totals: dict[date, list[int]] = {}
    for cell in facts:
        if cell.municipality in wanted:
            t = totals.setdefault(cell.month, [0, 0])
            t[0] += cell.counts["registered"]
            t[1] += cell.counts["matched"]
    result = []
    for i in range(MONTHS_SHOWN - 1, -1, -1):
        index = last.year * 12 + last.month - 1 - i
        month = date(index // 12, index % 12 + 1, 1)
        registered, matched = totals.get(month, [0, 0])
        result.append(Month(month, registered, matched))
    return result


def first_of_months_back(last: date, back: int) -> date:
    index = last.year * 12 + last.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


async def monthly(conn: Conn, codes: Sequence[str], today: date) -> list[Month]:
    last = today.replace(day=1)
    since = first_of_months_back(last, MONTHS_SHOWN - 1)
    return months(await cells(conn, since=since, until=last), codes, last)


CSV_HEADER = (
    "organisatie",
    "sector",
    "meldingen",
    "in_match",
    "aandeel_geinformeerd",
    "laatste_activiteit",
)


def to_csv(rows: Iterable[Participation]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for p in rows:
        shown = p.shown()
        writer.writerow(
            [
                _safe_cell(p.organisation),
                p.sector,
                shown["meldingen"],
                shown["matched"],
                shown["informed_share"],
                p.last_activity.isoformat() if p.last_activity else "",
            ]
        )
    return out.getvalue()


def _safe_cell(value: str) -> str:
    """A name a spreadsheet would take for a formula is kept as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
