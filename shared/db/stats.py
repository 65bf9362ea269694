"""Anonymous statistics facts, written with the events they count (noted in a
`shared.db.journal.Journal`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from shared.dates import amsterdam_date
from shared.db.pool import Conn

FactKind = Literal[
    "registered", "matched", "informed", "deferred", "family_parent", "family_address"
]


def month_of(moment: datetime) -> date:
    return amsterdam_date(moment).replace(day=1)


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    at: datetime
    sector: str
    municipality: str
    delta: int = 1


async def write_facts(conn: Conn, facts: Sequence[Fact]) -> None:
    """All facts in one statement (written by `shared.db.journal.Journal`)."""
    if not facts:
        return
    await conn.execute(
        """INSERT INTO stats_fact (month, sector, municipality, kind, delta)
           SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::text[], $5::int[])""",
        [month_of(f.at) for f in facts],
        [f.sector for f in facts],
        [f.municipality for f in facts],
        [f.kind for f in facts],
        [f.delta for f in facts],
    )
