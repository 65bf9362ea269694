"""Looking up what a request names: what this user may not see is simply not there
(404), as is what does not exist."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asyncpg.pool import PoolConnectionProxy
from starlette.exceptions import HTTPException
from starlette.requests import Request

from services.portal.web.context import portal_of

T = TypeVar("T")


def uuid_param(request: Request, name: str) -> uuid.UUID:
    """The path parameter `name` as a UUID; 404 when it is none."""
    try:
        return uuid.UUID(request.path_params[name])
    except ValueError:
        raise HTTPException(404) from None


async def found_or_404(
    request: Request, look_up: Callable[[PoolConnectionProxy[Any]], Awaitable[T | None]]
) -> T:
    """What `look_up` finds on a connection of the portal's pool; 404 when nothing."""
    async with portal_of(request).pool.acquire() as conn:
        found = await look_up(conn)
    if found is None:
        raise HTTPException(404)
    return found
