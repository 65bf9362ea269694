"""Anonymous statistics facts, written with the events they count."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from shared.dates import amsterdam_date
from shared.db.pool import Conn

FactKind = Literal["registered", "matched", "informed", "deferred"]


def month_of(moment: datetime) -> date:
    return amsterdam_date(moment).replace(day=1)


async def record(
    conn: Conn,
    kind: FactKind,
    *,
    at: datetime,
    sector: str,
    municipality: str,
    delta: int = 1,
) -> None:
    await conn.execute(
        """INSERT INTO stats_fact (month, sector, municipality, kind, delta)
           VALUES ($1, $2, $3, $4, $5)""",
        month_of(at),
        sector,
        municipality,
        kind,
        delta,
    )
