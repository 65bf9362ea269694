from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dates import add_years, age_on, amsterdam_date, birthday, inform_targets


class TestAmsterdamDate:
    def test_winter_night_in_utc_is_next_day_in_amsterdam(self) -> None:
        assert amsterdam_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == date(2027, 1, 1)

    def test_summer_offset_is_two_hours(self) -> None:
        assert amsterdam_date(datetime(2026, 6, 30, 21, 59, tzinfo=UTC)) == date(2026, 6, 30)
        assert amsterdam_date(datetime(2026, 6, 30, 22, 0, tzinfo=UTC)) == date(2026, 7, 1)

    def test_other_offsets_are_converted(self) -> None:
        new_york = timezone(timedelta(hours=-5))
        assert amsterdam_date(datetime(2026, 11, 28, 19, 0, tzinfo=new_york)) == date(2026, 11, 29)

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError):
            amsterdam_date(datetime(2026, 11, 28, 10, 0))


class TestAddYears:
    def test_ordinary_date(self) -> None:
        assert add_years(date(2014, 5, 1), 23) == date(2037, 5, 1)

    def test_leap_day_into_non_leap_year_becomes_28_february(self) -> None:
        assert add_years(date(2004, 2, 29), 1) == date(2005, 2, 28)

    def test_leap_day_into_leap_year_stays(self) -> None:
        assert add_years(date(2004, 2, 29), 4) == date(2008, 2, 29)

    def test_backwards(self) -> None:
        assert add_years(date(2008, 2, 29), -1) == date(2007, 2, 28)


class TestAge:
    def test_day_before_and_on_23rd_birthday(self) -> None:
        birth = date(2003, 11, 28)
        assert age_on(birth, date(2026, 11, 27)) == 22
        assert age_on(birth, date(2026, 11, 28)) == 23

    def test_leap_day_birth_turns_older_on_28_february(self) -> None:
        birth = date(2004, 2, 29)
        assert birthday(birth, 23) == date(2027, 2, 28)
        assert age_on(birth, date(2027, 2, 27)) == 22
        assert age_on(birth, date(2027, 2, 28)) == 23

    def test_leap_day_birth_in_leap_year_uses_29_february(self) -> None:
        birth = date(2004, 2, 29)
        assert age_on(birth, date(2028, 2, 28)) == 23
        assert age_on(birth, date(2028, 2, 29)) == 24

    def test_before_birth_is_negative(self) -> None:
        assert age_on(date(2020, 5, 1), date(2020, 4, 30)) == -1

    @settings(max_examples=300, database=None)
    @given(
        birth=st.dates(min_value=date(1950, 1, 1), max_value=date(2030, 12, 31)),
        n=st.integers(min_value=1, max_value=60),
    )
    def test_age_changes_exactly_on_birthday(self, birth: date, n: int) -> None:
        day = birthday(birth, n)
        assert age_on(birth, day) == n
        assert age_on(birth, day - timedelta(days=1)) == n - 1


class TestInformTargets:
    birth = date(2010, 3, 15)

    def test_under_12_parents(self) -> None:
        assert inform_targets(self.birth, date(2022, 3, 14)) == ["parents"]

    def test_from_12th_birthday_youth_and_parents(self) -> None:
        assert inform_targets(self.birth, date(2022, 3, 15)) == ["youth", "parents"]
        assert inform_targets(self.birth, date(2026, 3, 14)) == ["youth", "parents"]

    def test_from_16th_birthday_youth(self) -> None:
        assert inform_targets(self.birth, date(2026, 3, 15)) == ["youth"]

    def test_leap_day_birth_band_starts_on_28_february(self) -> None:
        birth = date(2008, 2, 29)
        assert inform_targets(birth, date(2020, 2, 28)) == ["parents"]  # 2020 is a leap year
        assert inform_targets(birth, date(2020, 2, 29)) == ["youth", "parents"]
        assert inform_targets(birth, date(2024, 2, 29)) == ["youth"]
        assert inform_targets(birth, date(2023, 2, 28)) == ["youth", "parents"]
