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
from shared.db.stats import FactKind
from shared.index import repository as repo
from shared.index.participants import participant


async def informed(ctx: Context, msg: MeldingInformed) -> None:
    conn = ctx.uow.conn
    # find_own_active holds the youth's lock from here on (serialised with the
    # retention sweep's reminder and expiry).
    found = await find_own_active(ctx, msg.melding_ref)
    if found is None:
        return
    youth = found.youth
    before = await repo.record_informed(
        conn,
        found.melding.id,
        informed=msg.informed,
        informed_on=msg.informed_on,
        deferred_reason=msg.deferred_reason,
    )
    deferred = msg.deferred_reason is not None
    ctx.audit(
        "inform_deferred" if deferred else "informed",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        detail={} if deferred else {"informed": list(msg.informed or [])},
        portal_user=ctx.portal_user,
    )
    # Statistics count each melding once, by its latest state: a confirmation that
    # replaces a deferral moves it from one column to the other.
    was: FactKind | None = (
        "informed" if before.was_informed else "deferred" if before.was_deferred else None
    )
    now: FactKind = "deferred" if deferred else "informed"
    if was != now:
        sector = participant(ctx.region, found.melding).sector
        for kind, delta in ((was, -1), (now, 1)):
            if kind is not None:
                # In the month the melding was registered.
                ctx.count(
                    kind,
                    at=before.registered_at,
                    sector=sector,
                    municipality=youth.municipality,
                    delta=delta,
                )
    ctx.accept(msg.melding_ref)
