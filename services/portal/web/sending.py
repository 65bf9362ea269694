"""Sending a recorded request and waiting briefly for the index's answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.portal import gateway, readmodel
from services.portal.accounts import User
from services.portal.auditing import audit_user
from services.portal.web.context import Portal

WAIT_STEP_SECONDS = 0.1


async def send_and_wait(portal: Portal, sent: gateway.Request) -> dict[str, Any] | None:
    """Publish, then wait a little for the index's receipt (read from the mailbox by
    any replica); None when it has not come yet (the page says so)."""
    await portal.gateway.publish(sent)
    deadline = asyncio.get_running_loop().time() + portal.settings.receipt_wait_seconds
    while True:
        async with portal.pool.acquire() as conn:
            answer = await readmodel.answer(conn, sent.message_id)
        if answer is not None or asyncio.get_running_loop().time() >= deadline:
            return answer
        await asyncio.sleep(WAIT_STEP_SECONDS)


async def send_request(
    portal: Portal,
    user: User,
    sent: gateway.Request,
    *,
    detail: dict[str, Any],
    melding_ref: str | None = None,
    match_id: uuid.UUID | None = None,
) -> dict[str, Any] | None:
    """A user's request on a melding or match: recorded with its audit entry in one
    transaction, then sent; the index's answer if it came in time (see send_and_wait)."""
    async with portal.pool.acquire() as conn, conn.transaction():
        await gateway.record(conn, sent)
        await audit_user(
            conn,
            user,
            "portal_request_sent",
            melding_ref=melding_ref,
            match_id=match_id,
            detail=detail,
        )
    return await send_and_wait(portal, sent)
