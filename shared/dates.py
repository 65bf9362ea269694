"""Calendar rules of the Verwijsindex, judged on dates in Europe/Amsterdam.

Ages, birthdays and deadlines are calendar facts, not durations: a melding made at
23:30 UTC on 31 December counts as made on 1 January in Amsterdam.

A date that does not exist in the target year (29 February) becomes 28 February.
For personal data the earlier date is the safe one: a youth leaves the index on the
earlier day rather than one day too late.
"""

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

InformTarget = Literal["youth", "parents"]

# Informing bands by age on the day of the melding (Jeugdwet art. 7.1.5.1).
YOUTH_ALONE_FROM_AGE = 16
YOUTH_TOO_FROM_AGE = 12


def amsterdam_date(ts: datetime) -> date:
    """The calendar date in Amsterdam at moment ``ts`` (which must carry an offset)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("a naive datetime has no defined Amsterdam date")
    return ts.astimezone(AMSTERDAM).date()


def add_years(d: date, years: int) -> date:
    """``d`` moved by whole calendar years; 29 February lands on 28 February if needed."""
    target_year = d.year + years
    try:
        return d.replace(year=target_year)
    except ValueError:
        # Only 29 February can be missing from the target year.
        return d.replace(year=target_year, day=28)


def birthday(birth: date, n: int) -> date:
    """The day on which someone born on ``birth`` turns ``n``."""
    return add_years(birth, n)


def age_on(birth: date, on: date) -> int:
    """Completed years on day ``on``, counting birthdays the way :func:`birthday` does.

    Negative when ``on`` lies before ``birth``.
    """
    years = on.year - birth.year
    if birthday(birth, years) > on:
        years -= 1
    return years


def inform_targets(birth: date, on: date) -> list[InformTarget]:
    """Whom the reporter informs about a melding made on day ``on``."""
    age = age_on(birth, on)
    if age < YOUTH_TOO_FROM_AGE:
        return ["parents"]
    if age < YOUTH_ALONE_FROM_AGE:
        return ["youth", "parents"]
    return ["youth"]
