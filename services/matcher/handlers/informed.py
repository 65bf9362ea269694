"""melding.informed: the reporter confirms the family was told, or defers it.

Only the fact is stored (who, on which day, or the deferral reason); a later message
replaces the earlier one.
"""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.inbound import MeldingInformed
from shared.db.audit import audit


async def informed(ctx: Context, msg: MeldingInformed) -> None:
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    await ctx.uow.conn.execute(
        """UPDATE melding SET informed = $2, informed_on = $3, deferred_reason = $4
           WHERE id = $1""",
        found.melding.id,
        list(msg.informed) if msg.informed else None,
        msg.informed_on,
        msg.deferred_reason,
    )
    await audit(
        ctx.uow.conn,
        "inform_deferred" if msg.deferred_reason else "informed",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        at=ctx.now,
    )
    ctx.accept(msg.melding_ref)
