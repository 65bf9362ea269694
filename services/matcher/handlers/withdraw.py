"""melding.withdraw: the owner ends its melding (archived or purged by reason).

`risk_ended` moves the melding into the archive for 5 years; `unjustified` purges it
at once (and the youth with it when nothing else is stored on it).
"""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.inbound import MeldingWithdraw
from shared.index.lifecycle import end_melding


async def withdraw(ctx: Context, msg: MeldingWithdraw) -> None:
    conn = ctx.uow.conn
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    youth = found.youth
    ctx.tell(
        *await end_melding(
            conn,
            ctx.journal,
            ctx.region,
            found.melding,
            youth_id=youth.id,
            youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
            reason=msg.reason,
            actor=ctx.partner_id,
            portal_user=ctx.portal_user,
            now=ctx.now,
        )
    )
    ctx.accept(msg.melding_ref)
