"""Portal accounts and their sessions, in PostgreSQL (every replica sees the same)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.portal import credentials
from services.portal.policy import LoginPolicy
from shared.db.pool import Conn
from shared.region.model import PORTAL_ID


class Role(StrEnum):
    PROFESSIONAL = "professional"
    ORG_ADMIN = "org_admin"
    # A municipality's match coordinator: no partner, one or more municipality codes.
    COORDINATOR = "coordinator"


# The partner_id of every coordinator account: the portal's own mailbox, where the
# answers to a coordinator's requests arrive (contract §9; no partner has this id).
COORDINATOR_PARTNER = PORTAL_ID


class AccountExists(ValueError):
    """An active or disabled account already has this e-mail address."""


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    partner_id: str
    email: str
    name: str
    phone: str
    role: Role
    status: str
    municipalities: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ORG_ADMIN

    @property
    def is_coordinator(self) -> bool:
        return self.role is Role.COORDINATOR

    @property
    def actor(self) -> str:
        """How this user is named in `x-vi-actor` and in the audit log."""
        return str(self.id)


_USER_COLUMNS = "id, partner_id, email, name, phone, role, status, municipalities"
_SESSION_USER_COLUMNS = ", ".join("u." + c for c in _USER_COLUMNS.split(", "))


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        partner_id=row["partner_id"],
        email=row["email"],
        name=row["name"],
        phone=row["phone"],
        role=Role(row["role"]),
        status=row["status"],
        municipalities=tuple(row["municipalities"]),
    )


async def invite(
    conn: Conn,
    *,
    partner_id: str,
    email: str,
    role: Role,
    now: datetime,
    valid_days: int,
    name: str = "",
    phone: str = "",
    invited_by: uuid.UUID | None = None,
    municipalities: tuple[str, ...] = (),
) -> tuple[User, str]:
    """A new account (or a fresh link for one not yet activated) and its one-time
    activation token. A coordinator has `partner_id` COORDINATOR_PARTNER and its
    municipality codes; every other role a partner and none."""
    token = credentials.new_token()
    expires = now + timedelta(days=valid_days)
    existing = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM portal_user WHERE lower(email) = lower($1) FOR UPDATE",  # noqa: S608 - constant SQL parts
        email,
    )
    if existing is not None:
        if existing["status"] != "invited" or existing["partner_id"] != partner_id:
            raise AccountExists(email)
        row = await conn.fetchrow(
            f"""UPDATE portal_user SET activation_hash = $2, activation_expires = $3,
                       role = $4, name = coalesce(nullif($5, ''), name),
                       phone = coalesce(nullif($6, ''), phone), municipalities = $7
                WHERE id = $1 RETURNING {_USER_COLUMNS}""",  # noqa: S608 - constant SQL parts
            existing["id"],
            credentials.token_hash(token),
            expires,
            role.value,
            name,
            phone,
            list(municipalities),
        )
    else:
        row = await conn.fetchrow(
            f"""INSERT INTO portal_user (id, partner_id, email, name, phone, role,
                       activation_hash, activation_expires, invited_by, municipalities)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_USER_COLUMNS}""",  # noqa: S608 - constant SQL parts
            uuid.uuid4(),
            partner_id,
            email.strip(),
            name,
            phone,
            role.value,
            credentials.token_hash(token),
            expires,
            invited_by,
            list(municipalities),
        )
    return _user(row), token


async def invited_user(conn: Conn, token: str, now: datetime) -> User | None:
    """The account an activation token opens, while it is unused and valid."""
    row = await conn.fetchrow(
        f"""SELECT {_USER_COLUMNS} FROM portal_user
            WHERE activation_hash = $1 AND status = 'invited' AND activation_expires > $2""",  # noqa: S608 - constant SQL parts
        credentials.token_hash(token),
        now,
    )
    return None if row is None else _user(row)


async def totp_secret_for_activation(conn: Conn, user_id: uuid.UUID) -> str:
    """The second-factor secret shown while activating: made once, so that reloading
    the page does not invalidate an authenticator already set up."""
    secret = await conn.fetchval(
        """UPDATE portal_user SET totp_secret = coalesce(totp_secret, $2)
           WHERE id = $1 RETURNING totp_secret""",
        user_id,
        credentials.new_totp_secret(),
    )
    return str(secret)


async def activate(
    conn: Conn,
    user_id: uuid.UUID,
    *,
    name: str,
    phone: str,
    password_hash: str,
    totp_step: int,
    now: datetime,
) -> None:
    await conn.execute(
        """UPDATE portal_user SET status = 'active', name = $2, phone = $3,
                  password_hash = $4, totp_last_step = $5, activation_hash = NULL,
                  activation_expires = NULL, activated_at = $6, failed_logins = 0
           WHERE id = $1 AND status = 'invited'""",
        user_id,
        name,
        phone,
        password_hash,
        totp_step,
        now,
    )


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    # "ok", "invalid" (a factor wrong, or no such active account), "locked"
    outcome: str
    # The account the attempt concerned, also when it failed (for the audit log).
    user_id: uuid.UUID | None = None


async def check_login(
    conn: Conn, email: str, password: str, code: str, policy: LoginPolicy, now: datetime
) -> LoginResult:
    """Both factors, under the account's row lock (two replicas count failures alike).
    A wrong factor is not named: the answer is the same for either."""
    row = await conn.fetchrow(
        f"""SELECT {_USER_COLUMNS}, password_hash, totp_secret, totp_last_step,
                   failed_logins, locked_until
            FROM portal_user WHERE lower(email) = lower($1) FOR UPDATE""",  # noqa: S608 - constant SQL parts
        email.strip(),
    )
    if row is None or row["status"] != "active":
        credentials.password_matches(None, password)
        return LoginResult(None, "invalid", row["id"] if row is not None else None)
    if policy.is_locked(row["locked_until"], now):
        return LoginResult(None, "locked", row["id"])
    step = credentials.accepted_totp_step(row["totp_secret"], code, now, row["totp_last_step"])
    if credentials.password_matches(row["password_hash"], password) and step is not None:
        await conn.execute(
            """UPDATE portal_user SET failed_logins = 0, locked_until = NULL,
                      totp_last_step = $2 WHERE id = $1""",
            row["id"],
            step,
        )
        return LoginResult(_user(row), "ok", row["id"])
    failures, locked_until = policy.after_failure(row["failed_logins"], now)
    await conn.execute(
        "UPDATE portal_user SET failed_logins = $2, locked_until = $3 WHERE id = $1",
        row["id"],
        failures,
        locked_until,
    )
    return LoginResult(None, "locked" if locked_until else "invalid", row["id"])


async def address_refused(conn: Conn, address: str, policy: LoginPolicy, now: datetime) -> bool:
    """Whether logins from `address` are refused for now (too many failures)."""
    row = await conn.fetchrow(
        "SELECT failures, window_start FROM portal_login_address WHERE address = $1", address
    )
    return row is not None and policy.address_refused(row["failures"], row["window_start"], now)


async def count_address_failure(
    conn: Conn, address: str, policy: LoginPolicy, now: datetime
) -> None:
    """One more failed login from `address`, under its row lock (replicas count alike)."""
    await conn.execute(
        """INSERT INTO portal_login_address (address, window_start, failures)
           VALUES ($1, $2, 0) ON CONFLICT (address) DO NOTHING""",
        address,
        now,
    )
    row = await conn.fetchrow(
        """SELECT failures, window_start FROM portal_login_address
           WHERE address = $1 FOR UPDATE""",
        address,
    )
    assert row is not None  # inserted above, and only housekeeping deletes
    failures, window_start = policy.after_address_failure(row["failures"], row["window_start"], now)
    await conn.execute(
        "UPDATE portal_login_address SET failures = $2, window_start = $3 WHERE address = $1",
        address,
        failures,
        window_start,
    )


async def forget_ended_address_windows(conn: Conn, policy: LoginPolicy, now: datetime) -> int:
    """Remove the failure counts of addresses whose window has ended."""
    done = await conn.execute(
        "DELETE FROM portal_login_address WHERE window_start <= $1",
        now - timedelta(minutes=policy.address_window_minutes),
    )
    return int(done.split()[-1])


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str


async def start_session(conn: Conn, user_id: uuid.UUID, now: datetime) -> str:
    """A new session; returns the token for the cookie."""
    token = credentials.new_token()
    await conn.execute(
        """INSERT INTO portal_session (token_hash, user_id, csrf_token, created_at, last_seen)
           VALUES ($1, $2, $3, $4, $4)""",
        credentials.token_hash(token),
        user_id,
        credentials.new_token(),
        now,
    )
    return token


async def current_session(
    conn: Conn, token: str, policy: LoginPolicy, now: datetime
) -> Session | None:
    """The session a cookie token stands for, kept alive by this request; None when
    unknown, lapsed after inactivity (then ended), or its account disabled."""
    row = await conn.fetchrow(
        f"""SELECT s.csrf_token, s.last_seen, {_SESSION_USER_COLUMNS}
            FROM portal_session s JOIN portal_user u ON u.id = s.user_id
            WHERE s.token_hash = $1""",  # noqa: S608 - constant SQL parts
        credentials.token_hash(token),
    )
    if row is None:
        return None
    if row["status"] != "active" or policy.session_lapsed(row["last_seen"], now):
        await end_session(conn, token)
        return None
    await conn.execute(
        "UPDATE portal_session SET last_seen = $2 WHERE token_hash = $1",
        credentials.token_hash(token),
        now,
    )
    return Session(_user(row), row["csrf_token"])


async def end_session(conn: Conn, token: str) -> None:
    await conn.execute(
        "DELETE FROM portal_session WHERE token_hash = $1", credentials.token_hash(token)
    )


async def forget_lapsed_sessions(conn: Conn, policy: LoginPolicy, now: datetime) -> int:
    result = await conn.execute(
        "DELETE FROM portal_session WHERE last_seen < $1",
        now - timedelta(minutes=policy.idle_minutes),
    )
    return int(result.split()[-1])


async def users_of(conn: Conn, partner_id: str) -> list[User]:
    rows = await conn.fetch(
        f"SELECT {_USER_COLUMNS} FROM portal_user WHERE partner_id = $1 ORDER BY lower(email)",  # noqa: S608 - constant SQL parts
        partner_id,
    )
    return [_user(r) for r in rows]


async def disable(conn: Conn, partner_id: str, user_id: uuid.UUID) -> bool:
    """Disable an account of `partner_id` and end its sessions; False when there is no
    such account in that organisation."""
    done = await conn.fetchval(
        """UPDATE portal_user SET status = 'disabled', activation_hash = NULL
           WHERE id = $1 AND partner_id = $2 RETURNING id""",
        user_id,
        partner_id,
    )
    if done is None:
        return False
    await conn.execute("DELETE FROM portal_session WHERE user_id = $1", user_id)
    return True
