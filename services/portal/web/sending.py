"""Sending a recorded request and waiting briefly for the index's answer."""

from __future__ import annotations

import asyncio
from typing import Any

from services.portal import gateway, readmodel
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
