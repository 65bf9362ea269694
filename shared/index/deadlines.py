"""When things fall due, on Europe/Amsterdam calendar dates (pure functions)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from shared.dates import add_years, amsterdam_date, birthday

EXPIRY_YEARS = 2
ARCHIVE_YEARS = 5
AGE_LIMIT = 23


def expiry_date(reported_at: datetime) -> date:
    """A melding ends on this day, 2 years after the day it was made."""
    return add_years(amsterdam_date(reported_at), EXPIRY_YEARS)


def archive_purge_date(ended_at: datetime) -> date:
    return add_years(amsterdam_date(ended_at), ARCHIVE_YEARS)


def age_limit_date(birth_date: date) -> date:
    """The 23rd birthday: everything on the youth is purged that day."""
    return birthday(birth_date, AGE_LIMIT)


def days_after(start: datetime, days: int) -> date:
    return amsterdam_date(start) + timedelta(days=days)


def is_due(due: date, now: datetime) -> bool:
    return amsterdam_date(now) >= due
