"""The lead of a match. regie.claim: the first valid claim wins. regie.assign: the
match coordinator of the youth's municipality gives the lead to a partner in the match,
also when another has it (contract §9; the rule is in `shared.index.assignment`)."""

from __future__ import annotations

import uuid

from services.matcher.context import Context
from services.matcher.handlers.lookup import find_own_active
from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import RegieAssign, RegieClaim
from shared.index import repository as repo
from shared.index.assignment import LeadStays, LiveMatch, decide_assignment
from shared.index.decisions import LeadChanged


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
    ctx.audit(
        "lead_claimed",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        match_id=group.id,
        portal_user=ctx.portal_user,
    )
    members = await repo.active_members(conn, group.id)
    ctx.tell(LeadChanged(group.id, members, found.melding.id, youth.municipality))
    ctx.accept(msg.melding_ref)


async def assign(ctx: Context, msg: RegieAssign) -> None:
    conn = ctx.uow.conn
    coordinator = ctx.command.coordinator
    assert coordinator is not None  # ingest lets regie.assign through from coordinators only
    found = await _lock_live_group(ctx, msg.match_id)
    match = None
    if found is not None:
        group, youth = found
        members = await repo.active_members(conn, group.id)
        match = LiveMatch(youth.municipality, members, group.lead_melding_id)
    decision = decide_assignment(
        match,
        coordinator=coordinator,
        partner=msg.partner,
        partner_takes_part=ctx.region.takes_part(msg.partner),
    )
    if isinstance(decision, ErrorItem):
        ctx.reject_all(None, [decision])
        return
    if isinstance(decision, LeadStays):
        ctx.accept(None)
        return
    assert found is not None and match is not None
    group, youth = found
    # Setting the lead keeps the deadline period and its escalation as they were: the
    # deadline no longer runs while a lead is set, and starts again only when the lead
    # is cleared (its melding ends), as after a claim.
    await repo.set_lead(conn, group.id, decision.melding.id, ctx.now)
    ctx.audit(
        "lead_assigned",
        f"coordinator:{coordinator}",
        melding_ref=decision.melding.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        match_id=group.id,
        portal_user=ctx.portal_user,
        detail={
            "partner": decision.melding.partner_id,
            "previous": decision.previous.partner_id if decision.previous else None,
        },
    )
    ctx.tell(
        LeadChanged(group.id, match.members, decision.melding.id, youth.municipality, assigned=True)
    )
    ctx.accept(None)


async def _lock_live_group(ctx: Context, match_id: str) -> tuple[repo.Group, repo.Youth] | None:
    """The live group named by a match_id, its youth locked; None for any other text."""
    try:
        parsed = uuid.UUID(match_id)
    except ValueError:
        return None
    # Only the canonical form that match.notice gives counts as the id.
    if str(parsed) != match_id:
        return None
    return await repo.lock_live_group(ctx.uow.conn, parsed)
