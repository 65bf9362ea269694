"""When expiry, archive purge, the 23rd birthday and the reminders fall due."""

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dates import AMSTERDAM, amsterdam_date
from shared.index.deadlines import (
    age_limit_date,
    archive_purge_date,
    days_after,
    expiry_date,
    is_due,
    latest_birth_date_at_age_limit,
    latest_start_due,
)


def ams(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=AMSTERDAM)


class TestExpiry:
    def test_two_years_after_the_amsterdam_date_of_reported_at(self) -> None:
        assert expiry_date(ams(2024, 3, 10, 9)) == date(2026, 3, 10)

    def test_day_before_and_day_of(self) -> None:
        due = expiry_date(ams(2024, 3, 10))
        assert not is_due(due, ams(2026, 3, 9, 23, 59))
        assert is_due(due, ams(2026, 3, 10, 0, 0))

    def test_reported_late_in_the_utc_evening_counts_from_the_amsterdam_date(self) -> None:
        # 23:30 UTC on 9 March (winter, UTC+1) is already 10 March in Amsterdam.
        assert expiry_date(datetime(2024, 3, 9, 23, 30, tzinfo=UTC)) == date(2026, 3, 10)
        assert expiry_date(datetime(2024, 3, 9, 22, 59, tzinfo=UTC)) == date(2026, 3, 9)

    def test_reported_on_leap_day_expires_on_28_february(self) -> None:
        assert expiry_date(ams(2024, 2, 29)) == date(2026, 2, 28)


class TestArchivePurge:
    def test_five_years_after_entering_the_archive(self) -> None:
        assert archive_purge_date(date(2026, 3, 10)) == date(2031, 3, 10)

    def test_leap_day_goes_earlier(self) -> None:
        assert archive_purge_date(date(2028, 2, 29)) == date(2033, 2, 28)


class TestAgeLimit:
    def test_23rd_birthday(self) -> None:
        assert age_limit_date(date(2004, 6, 15)) == date(2027, 6, 15)

    def test_leap_day_birth_into_non_leap_year_is_28_february(self) -> None:
        assert age_limit_date(date(2004, 2, 29)) == date(2027, 2, 28)

    def test_28_february_birth_stays_28_february(self) -> None:
        # (Someone born on 29 February always turns 23 in a year without one.)
        assert age_limit_date(date(2001, 2, 28)) == date(2024, 2, 28)
        assert age_limit_date(date(2005, 2, 28)) == date(2028, 2, 28)

    def test_latest_birth_date_reached_on_an_ordinary_day(self) -> None:
        assert latest_birth_date_at_age_limit(date(2027, 6, 15)) == date(2004, 6, 15)
        assert latest_birth_date_at_age_limit(date(2027, 6, 14)) == date(2004, 6, 14)

    def test_28_february_of_a_common_year_includes_those_born_on_29_february(self) -> None:
        assert latest_birth_date_at_age_limit(date(2027, 2, 28)) == date(2004, 2, 29)
        assert latest_birth_date_at_age_limit(date(2027, 2, 27)) == date(2004, 2, 27)
        assert latest_birth_date_at_age_limit(date(2027, 3, 1)) == date(2004, 3, 1)

    def test_29_february_of_a_leap_year(self) -> None:
        # Born 2005-02-28 (no 29th that year) turns 23 on 2028-02-28; 2028 has a 29th.
        assert latest_birth_date_at_age_limit(date(2028, 2, 28)) == date(2005, 2, 28)
        assert latest_birth_date_at_age_limit(date(2028, 2, 29)) == date(2005, 2, 28)

    @settings(max_examples=300)
    @given(
        birth=st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)),
        today=st.dates(min_value=date(2010, 1, 1), max_value=date(2055, 12, 31)),
    )
    def test_latest_birth_date_agrees_with_the_birthday_rule(
        self, birth: date, today: date
    ) -> None:
        reached = age_limit_date(birth) <= today
        assert reached == (birth <= latest_birth_date_at_age_limit(today))


class TestPeriodsInDays:
    def test_reminder_day_before_and_day_of(self) -> None:
        reported = ams(2026, 1, 1, 10)
        due = days_after(reported, 14)
        assert due == date(2026, 1, 15)
        assert not is_due(due, ams(2026, 1, 14, 23, 59))
        assert is_due(due, ams(2026, 1, 15, 0, 0))

    def test_amsterdam_midnight_in_winter(self) -> None:
        due = days_after(ams(2026, 1, 1, 10), 14)
        # 23:30 UTC on 14 January is 00:30 on 15 January in Amsterdam.
        assert is_due(due, datetime(2026, 1, 14, 23, 30, tzinfo=UTC))
        assert not is_due(due, datetime(2026, 1, 14, 22, 59, tzinfo=UTC))

    def test_amsterdam_midnight_in_summer(self) -> None:
        due = days_after(ams(2026, 7, 1, 10), 14)
        # 22:30 UTC on 14 July is 00:30 on 15 July in Amsterdam (UTC+2).
        assert is_due(due, datetime(2026, 7, 14, 22, 30, tzinfo=UTC))
        assert not is_due(due, datetime(2026, 7, 14, 21, 59, tzinfo=UTC))

    def test_latest_start_due_is_the_end_of_the_amsterdam_day(self) -> None:
        bound = latest_start_due(ams(2026, 1, 15, 0, 0), 14)
        assert bound == ams(2026, 1, 1, 0, 0) + timedelta(days=1) - timedelta(microseconds=1)
        assert is_due(days_after(bound, 14), ams(2026, 1, 15, 0, 0))
        later = bound + timedelta(microseconds=1)
        assert not is_due(days_after(later, 14), ams(2026, 1, 15, 0, 0))

    def test_latest_start_due_across_the_spring_clock_change(self) -> None:
        # 14 days that contain the 23-hour day of 29 March 2026: a period that started
        # at 23:59 on 20 March is due at 00:00 on 3 April, less than 13 x 24 h later.
        start = ams(2026, 3, 20, 23, 59)
        now = ams(2026, 4, 3, 0, 0)
        assert now.astimezone(UTC) - start.astimezone(UTC) < timedelta(days=13)
        assert is_due(days_after(start, 14), now)
        assert start <= latest_start_due(now, 14)

    @settings(max_examples=300)
    @given(
        start=st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
        ),
        elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
        days=st.integers(min_value=1, max_value=30),
    )
    def test_latest_start_due_agrees_with_is_due(
        self, start: datetime, elapsed: timedelta, days: int
    ) -> None:
        now = start + elapsed
        assert (start <= latest_start_due(now, days)) == is_due(days_after(start, days), now)
        assert amsterdam_date(latest_start_due(now, days)) == amsterdam_date(now) - timedelta(
            days=days
        )
