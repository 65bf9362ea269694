"""What every request handler of the portal needs, kept on the app's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from starlette.requests import Request

from services.portal.gateway import Gateway
from services.portal.policy import LoginPolicy
from services.portal.settings import PortalSettings
from shared.clock import Clock, utcnow
from shared.region.model import RegionConfig
from shared.region.store import RegionCache


@dataclass
class Portal:
    settings: PortalSettings
    pool: asyncpg.Pool[Any]
    gateway: Gateway
    region: RegionCache
    policy: LoginPolicy
    clock: Clock = field(default=utcnow)

    async def region_config(self) -> RegionConfig:
        return await self.region.get()


def portal_of(request: Request) -> Portal:
    portal = request.app.state.portal
    assert isinstance(portal, Portal)
    return portal
