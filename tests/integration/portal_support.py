"""The portal running in-process against a test region, and a browser-like client
(httpx against the ASGI app, cookies kept) that logs in as a professional would."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pyotp
from starlette.applications import Starlette

from services.portal import accounts, credentials
from services.portal.accounts import COORDINATOR_PARTNER, Role, User
from services.portal.app import start
from services.portal.settings import PortalSettings
from services.portal.web.context import Portal
from shared.clock import utcnow
from shared.db.pool import connect as connect_db
from shared.provisioning import with_login
from tests.conftest import System
from tests.support import PARTNER_PASSWORD, RegionUnderTest

PASSWORD = "een lang wachtwoord 1"
BASE_URL = "https://portal.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def portal_settings(region: RegionUnderTest, **changes: Any) -> PortalSettings:
    config = region.region
    assert config.portal is not None
    values: dict[str, Any] = {
        "amqp_url": with_login(
            region.settings.amqp_url,
            user=config.portal.broker_user,
            password=PARTNER_PASSWORD,
            vhost=region.vhost,
        ),
        "base_url": BASE_URL,
        "receipt_wait_seconds": 5.0,
        "mailbox_scan_seconds": 0.2,
        **changes,
    }
    return PortalSettings(**values)


async def start_portal(system: System, settings: PortalSettings) -> Starlette:
    started: list[Starlette] = []

    async def setup(runtime: Any) -> None:
        started.append(await start(runtime, settings, serve=False))

    await system.start("portal", setup=setup)
    return started[0]


@dataclass
class Account:
    user: User
    secret: str


async def make_account(
    region: RegionUnderTest,
    partner_id: str,
    *,
    role: Role = Role.PROFESSIONAL,
    municipalities: tuple[str, ...] = (),
) -> Account:
    """An activated account with PASSWORD and a TOTP secret (as activation leaves it)."""
    email = f"{uuid.uuid4().hex[:8]}@{partner_id}.example"
    secret = credentials.new_totp_secret()
    now = utcnow()
    conn = await connect_db(region.settings.database_url)
    try:
        user, _ = await accounts.invite(
            conn,
            partner_id=partner_id,
            email=email,
            role=role,
            now=now,
            valid_days=1,
            name=f"Medewerker {email[:4]}",
            phone="+31201234567",
            municipalities=municipalities,
        )
        await conn.execute("UPDATE portal_user SET totp_secret = $2 WHERE id = $1", user.id, secret)
        await accounts.activate(
            conn,
            user.id,
            name=user.name,
            phone=user.phone,
            password_hash=credentials.hash_password(PASSWORD),
            totp_step=credentials.totp_step(now - timedelta(minutes=5)),
            now=now,
        )
    finally:
        await conn.close()
    return Account(user, secret)


async def make_coordinator(region: RegionUnderTest, *codes: str) -> Account:
    """An activated match coordinator account for the municipalities `codes`."""
    return await make_account(
        region, COORDINATOR_PARTNER, role=Role.COORDINATOR, municipalities=codes
    )


def next_code(account: Account) -> str:
    return str(pyotp.TOTP(account.secret).at(utcnow() + timedelta(seconds=30)))


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, "the page has no form with a CSRF token"
    return found[1]


class Browser:
    """One person's browser on the portal: cookies kept, redirects not followed."""

    def __init__(self, app: Starlette, *, address: str = "127.0.0.1") -> None:
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 51234)),
            base_url=BASE_URL,
            follow_redirects=False,
        )
        self.app = app

    @property
    def portal(self) -> Portal:
        found = self.app.state.portal
        assert isinstance(found, Portal)
        return found

    async def get(self, path: str) -> httpx.Response:
        return await self.client.get(path)

    async def post_form(self, page_path: str, action: str, data: dict[str, Any]) -> httpx.Response:
        """Open `page_path`, then post `data` to `action` with that page's CSRF token."""
        token = csrf_of(await self.get(page_path))
        return await self.client.post(action, data={"csrf": token, **data})

    async def log_in(
        self, account: Account, *, code: str | None = None, password: str = PASSWORD
    ) -> httpx.Response:
        """Log in with the current TOTP code (or `code`); a code is accepted once, so a
        second login within 30 s passes the next step's code (one step of drift is
        allowed): `next_code(account)`."""
        chosen = code if code is not None else pyotp.TOTP(account.secret).at(utcnow())
        return await self.post_form(
            "/inloggen",
            "/inloggen",
            {"email": account.user.email, "password": password, "code": chosen},
        )

    async def close(self) -> None:
        await self.client.aclose()
