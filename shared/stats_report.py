"""Statistics per month, sector and municipality, with small cells suppressed.

Built only from the anonymous `stats_fact` rows. A count below 5 is shown as "<5",
and a share is shown only when every count it is made of is 5 or more, so no cell
can be traced back to one youth or one reporter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from shared.db.pool import Conn

SMALL = 5
COLUMNS = ("registered", "matched", "informed", "deferred", "open")
# Family matches (contract §8), per relation; shown after the shares.
FAMILY_COLUMNS = ("family_parent", "family_address")


@dataclass(frozen=True)
class Cell:
    month: date
    sector: str
    municipality: str
    counts: dict[str, int]


def suppress(count: int) -> str:
    return "<5" if count < SMALL else str(count)


def share(part: int, whole: int) -> str:
    if part < SMALL or whole < SMALL:
        return "-"
    return f"{round(100 * part / whole)}%"


def present(cell: Cell) -> dict[str, str]:
    c = cell.counts
    return {
        "month": cell.month.strftime("%Y-%m"),
        "sector": cell.sector,
        "municipality": cell.municipality,
        **{k: suppress(c[k]) for k in COLUMNS},
        "informed_share": share(c["informed"], c["registered"]),
        "deferred_share": share(c["deferred"], c["registered"]),
        "open_share": share(c["open"], c["registered"]),
        **{k: suppress(c[k]) for k in FAMILY_COLUMNS},
    }


async def cells(conn: Conn, *, since: date | None = None, until: date | None = None) -> list[Cell]:
    rows = await conn.fetch(
        """SELECT month, sector, municipality, kind, sum(delta)::int AS n FROM stats_fact
           WHERE ($1::date IS NULL OR month >= $1) AND ($2::date IS NULL OR month <= $2)
           GROUP BY month, sector, municipality, kind
           ORDER BY month, sector, municipality""",
        since,
        until,
    )
    grouped: dict[tuple[date, str, str], dict[str, int]] = {}
    for r in rows:
        key = (r["month"], r["sector"], r["municipality"])
        grouped.setdefault(key, dict.fromkeys(COLUMNS + FAMILY_COLUMNS, 0))[r["kind"]] = r["n"]
    result = []
    for (month, sector, municipality), counts in grouped.items():
        counts["open"] = max(counts["registered"] - counts["informed"] - counts["deferred"], 0)
        result.append(Cell(month, sector, municipality, counts))
    return result
