"""melding.informed: the reporter confirms the family was told, or defers it.

Only the fact is stored with the melding (who, on which day, or the deferral reason);
a later message replaces the earlier one, and either ends the reminder. It goes
wherever the melding goes: archiving clears it, purging removes it. The audit log
records that it happened, never the deferral text.
"""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.inbound import MeldingInformed
from shared.db.audit import audit
from shared.index import repository as repo


async def informed(ctx: Context, msg: MeldingInformed) -> None:
    conn = ctx.uow.conn
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    # Serialised with the retention sweep (reminder, expiry) by the youth's lock, and
    # read again under it.
    youth = await repo.lock_youth(conn, found.youth_id)
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    assert youth is not None
    await conn.execute(
        """UPDATE melding SET informed = $2, informed_on = $3, deferred_reason = $4
           WHERE id = $1""",
        found.melding.id,
        list(msg.informed) if msg.informed else None,
        msg.informed_on,
        msg.deferred_reason,
    )
    deferred = msg.deferred_reason is not None
    await audit(
        conn,
        "inform_deferred" if deferred else "informed",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        detail={} if deferred else {"informed": list(msg.informed or [])},
        at=ctx.now,
    )
    ctx.accept(msg.melding_ref)
