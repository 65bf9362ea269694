"""regie.claim: the first valid claim on a match's lead wins."""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.errors import ErrorCode
from shared.contract.inbound import RegieClaim
from shared.db.audit import audit
from shared.index import repository as repo
from shared.index.lifecycle import lead_changed_message


async def claim(ctx: Context, msg: RegieClaim) -> None:
    conn = ctx.uow.conn
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    # The youth's row lock (taken by find_own_active) serialises claims: of two at the
    # same moment, the second sees the first's lead.
    youth = found.youth
    group = await repo.group_of_melding(conn, found.melding.id)
    if group is None:
        ctx.reject(
            msg.melding_ref,
            ErrorCode.NO_MATCH,
            "melding_ref",
            "this melding is not in a match with another active melding",
        )
        return
    if group.lead_melding_id == found.melding.id:
        ctx.accept(msg.melding_ref)  # already the lead: nothing changes, nobody is told again
        return
    if group.lead_melding_id is not None:
        ctx.reject(
            msg.melding_ref,
            ErrorCode.REGIE_TAKEN,
            "melding_ref",
            "another organisation already has the lead in this match",
        )
        return
    await repo.set_lead(conn, group.id, found.melding.id, ctx.now)
    await audit(
        conn,
        "lead_claimed",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        match_id=group.id,
        at=ctx.now,
        portal_user=ctx.portal_user,
    )
    members = await repo.active_members(conn, group.id)
    ctx.uow.emit(
        await lead_changed_message(
            conn,
            ctx.region,
            group.id,
            members,
            found.melding.id,
            youth_id=youth.id,
            escalated=False,
        )
    )
    ctx.accept(msg.melding_ref)
