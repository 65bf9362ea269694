"""melding.withdraw: the owner ends its melding (archived or purged by reason)."""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.inbound import MeldingWithdraw
from shared.index import repository as repo
from shared.index.lifecycle import end_melding


async def withdraw(ctx: Context, msg: MeldingWithdraw) -> None:
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    youth = await repo.lock_youth(ctx.uow.conn, found.youth_id)
    assert youth is not None
    ctx.uow.emit(
        *await end_melding(
            ctx.uow.conn,
            ctx.region,
            found.melding,
            youth_id=youth.id,
            youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
            reason=msg.reason,
            actor=ctx.partner_id,
            now=ctx.now,
        )
    )
    ctx.accept(msg.melding_ref)
