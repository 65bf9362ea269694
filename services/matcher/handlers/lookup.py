"""Finding the sender's own melding; another partner's ref is simply unknown."""

from __future__ import annotations

from services.matcher.context import Context
from shared.contract.errors import ErrorCode
from shared.index import repository as repo


async def find_own_active(ctx: Context, melding_ref: str) -> repo.MeldingRow | None:
    """The partner's active melding by ref, or None after writing the rejection."""
    found = await repo.find_melding(ctx.uow.conn, ctx.partner_id, melding_ref)
    if found is None:
        ctx.reject(
            melding_ref,
            ErrorCode.UNKNOWN_MELDING,
            "melding_ref",
            "your organisation has no melding with this melding_ref",
        )
        return None
    if not found.melding.active:
        ctx.reject(
            melding_ref, ErrorCode.NOT_ACTIVE, "melding_ref", "this melding has already ended"
        )
        return None
    return found
