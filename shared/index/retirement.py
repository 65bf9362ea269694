"""A partner that leaves the region is kept in the file with `retired = true`.

`region apply` runs both functions here in the transaction that stores the config,
holding the stored config's row lock. The matcher reads the config under a share lock
(`RegionCache.current`), so no melding of a retired partner is registered around the
apply, and a second apply (or two at once) finds nothing left to do: the withdraw
happens exactly once, whatever the number of service replicas.

The partner's active meldingen end as its own `risk_ended` withdraw would end them,
through the same lifecycle code: into the archive for 5 years, where they still
signal once under its name and sector; their match groups lose a lead or end, and the
other partners hear of it (`regie.notice`, `match.ended`). The retired partner itself
is sent nothing.
"""

from __future__ import annotations

from datetime import datetime

from shared.db.pool import Conn
from shared.index import repository as repo
from shared.index.lifecycle import end_meldingen
from shared.outgoing import OutboundMessage
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfig


async def dropped_with_meldingen(
    conn: Conn, stored: RegionConfig | None, new: RegionConfig
) -> dict[str, int]:
    """Partners of the stored config missing from the new one that still have
    meldingen (active or archived), with their counts: the law keeps those meldingen,
    and they need their partner's name and sector."""
    if stored is None:
        return {}
    dropped = [p.id for p in stored.partner if p.id not in new.partners_by_id]
    return await repo.melding_counts(conn, dropped) if dropped else {}


async def withdraw_retired(
    conn: Conn, region: RegionConfig, pseudonyms: Pseudonymizer, *, actor: str, now: datetime
) -> tuple[int, list[OutboundMessage]]:
    """End every active melding of the region's retired partners as `risk_ended`.
    Returns (meldingen withdrawn, messages to emit)."""
    retired = {p.id for p in region.partner if p.retired}
    if not retired:
        return 0, []
    withdrawn = 0
    out: list[OutboundMessage] = []
    # Youths are locked in id order, one at a time, and re-read under the lock: the
    # retention sweep may have ended a melding since the list was made.
    for youth_id in await repo.youths_with_active_meldingen_of(conn, sorted(retired)):
        youth = await repo.lock_youth(conn, youth_id)
        if youth is None:
            continue
        leaving = [
            m
            for m in await repo.meldingen_of_youth(conn, youth_id)
            if m.active and m.partner_id in retired
        ]
        if not leaving:
            continue
        # All of a youth's leaving meldingen at once: the others hear one outcome.
        out.extend(
            await end_meldingen(
                conn,
                region,
                leaving,
                youth_id=youth_id,
                youth_ref=pseudonyms.audit_ref(youth.identity_hash),
                reason="risk_ended",
                actor=actor,
                now=now,
            )
        )
        withdrawn += len(leaving)
    return withdrawn, out
