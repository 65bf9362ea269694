"""When things fall due, on Europe/Amsterdam calendar dates (pure functions).

Every rule here is a calendar fact: a deadline falls on a date, and it is due from
the first moment of that date in Amsterdam. A date that does not exist in the target
year (29 February) is 28 February: personal data goes earlier, never later.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from shared.dates import AMSTERDAM, add_years, amsterdam_date, birthday

EXPIRY_YEARS = 2
ARCHIVE_YEARS = 5
AGE_LIMIT = 23

_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)  # PostgreSQL's timestamp resolution


def expiry_date(reported_at: datetime) -> date:
    """A melding ends on this day, 2 years after the day it was made."""
    return add_years(amsterdam_date(reported_at), EXPIRY_YEARS)


def archive_purge_date(archived_on: date) -> date:
    """An archived melding is purged on this day, 5 years after it entered the archive."""
    return add_years(archived_on, ARCHIVE_YEARS)


def age_limit_date(birth_date: date) -> date:
    """The 23rd birthday: everything on the youth is purged that day."""
    return birthday(birth_date, AGE_LIMIT)


def latest_birth_date_at_age_limit(today: date) -> date:
    """The latest birth date whose 23rd birthday is on or before ``today``.

    Everyone born on or before it has reached the age limit; everyone born after it
    has not. Usually 23 years before ``today``; on 28 February of a year without a
    29th, those born on 29 February are included too.
    """
    candidate = add_years(today, -AGE_LIMIT)
    following = candidate + _ONE_DAY
    return following if age_limit_date(following) <= today else candidate


def days_after(start: datetime, days: int) -> date:
    return amsterdam_date(start) + timedelta(days=days)


def is_due(due: date, now: datetime) -> bool:
    return amsterdam_date(now) >= due


def start_of_day(day: date) -> datetime:
    """The first moment of ``day`` in Amsterdam."""
    return datetime.combine(day, time(0), tzinfo=AMSTERDAM)


def latest_start_due(now: datetime, days: int) -> datetime:
    """The latest moment ``t`` for which ``days_after(t, days)`` is due at ``now``.

    A period that started at or before it has run its course; one that started after
    it has not. Exact across daylight-saving changes (a day is a calendar day, not 24
    hours), so a database filter ``started <= latest_start_due(now, days)`` selects
    precisely what :func:`is_due` would.
    """
    first_not_due = amsterdam_date(now) - timedelta(days=days) + _ONE_DAY
    return start_of_day(first_not_due) - _ONE_MICROSECOND
