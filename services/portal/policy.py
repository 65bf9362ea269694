"""When an account locks and a session lapses: plain rules, free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lock_minutes: int = 15
    idle_minutes: int = 15
    # Failed logins from one network address, whichever accounts they tried: at the
    # limit the address is refused until its window ends (a lock per account does not
    # stop one guess each at many accounts).
    max_address_failures: int = 20
    address_window_minutes: int = 15

    def is_locked(self, locked_until: datetime | None, now: datetime) -> bool:
        return locked_until is not None and locked_until > now

    def after_failure(self, failures: int, now: datetime) -> tuple[int, datetime | None]:
        """The failure count after one more failed login, and until when the account
        is locked: at the limit it locks, and the count starts again afterwards."""
        failures += 1
        if failures >= self.max_failures:
            return 0, now + timedelta(minutes=self.lock_minutes)
        return failures, None

    def session_lapsed(self, last_seen: datetime, now: datetime) -> bool:
        return now - last_seen > timedelta(minutes=self.idle_minutes)

    def address_window_end(self, window_start: datetime) -> datetime:
        return window_start + timedelta(minutes=self.address_window_minutes)

    def address_refused(self, failures: int, window_start: datetime, now: datetime) -> bool:
        return failures >= self.max_address_failures and now < self.address_window_end(window_start)

    def after_address_failure(
        self, failures: int, window_start: datetime, now: datetime
    ) -> tuple[int, datetime]:
        """The failure count and window start of an address after one more failed
        login: a window that has ended starts again at this failure."""
        if now >= self.address_window_end(window_start):
            return 1, now
        return failures + 1, window_start
