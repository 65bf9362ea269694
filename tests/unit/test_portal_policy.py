"""When a portal account locks, and when a session lapses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.portal.policy import LoginPolicy

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_the_account_locks_at_the_limit_and_the_count_starts_again() -> None:
    policy = LoginPolicy(max_failures=3, lock_minutes=15)
    failures, locked = 0, None
    for _ in range(2):
        failures, locked = policy.after_failure(failures, NOW)
        assert locked is None
    failures, locked = policy.after_failure(failures, NOW)
    assert failures == 0
    assert locked == NOW + timedelta(minutes=15)
    assert policy.is_locked(locked, NOW + timedelta(minutes=14))
    assert not policy.is_locked(locked, NOW + timedelta(minutes=15))
    assert not policy.is_locked(None, NOW)


def test_a_session_lapses_after_the_idle_time() -> None:
    policy = LoginPolicy(idle_minutes=15)
    assert not policy.session_lapsed(NOW, NOW + timedelta(minutes=15))
    assert policy.session_lapsed(NOW, NOW + timedelta(minutes=15, seconds=1))


def test_an_address_is_refused_at_the_limit_until_its_window_ends() -> None:
    policy = LoginPolicy(max_address_failures=3, address_window_minutes=15)
    failures, start = 0, NOW
    for minute in range(3):
        assert not policy.address_refused(failures, start, NOW + timedelta(minutes=minute))
        failures, start = policy.after_address_failure(
            failures, start, NOW + timedelta(minutes=minute)
        )
    assert (failures, start) == (3, NOW)
    assert policy.address_refused(failures, start, NOW + timedelta(minutes=14, seconds=59))
    assert not policy.address_refused(failures, start, NOW + timedelta(minutes=15))


def test_a_failure_after_the_window_starts_a_new_one() -> None:
    policy = LoginPolicy(max_address_failures=3, address_window_minutes=15)
    later = NOW + timedelta(minutes=20)
    assert policy.after_address_failure(2, NOW, later) == (1, later)
    assert policy.after_address_failure(2, NOW, NOW + timedelta(minutes=5)) == (3, NOW)
