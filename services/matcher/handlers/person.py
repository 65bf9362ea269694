"""person.moved and person.deceased from the population register.

Only a partner with the population_register role gets here (ingest checks the role).
Both answer `unknown_person` only when nothing at all, active or archived, is stored
on the BSN.

A move updates the youth's municipality and tells the partners with an active melding
(`youth.moved`) and the match coordinator of the new municipality (e-mail). With
archived meldingen only, nobody is told: the archive is not shown to anyone.

A death purges everything on the youth, the archive included; the owners of active
meldingen get `melding.ended` with reason `deceased`.
"""

from __future__ import annotations

from services.matcher.context import Context
from shared.contract.errors import ErrorCode
from shared.contract.inbound import PersonDeceased, PersonMoved
from shared.index import repository as repo
from shared.index.decisions import Moved
from shared.index.lifecycle import purge_youth


def _unknown(ctx: Context) -> None:
    ctx.reject(None, ErrorCode.UNKNOWN_PERSON, "bsn", "nothing is stored on this person")


async def moved(ctx: Context, msg: PersonMoved) -> None:
    conn = ctx.uow.conn
    youth = await repo.lock_youth_by_hash(conn, ctx.pseudonyms.youth_by_bsn(msg.bsn))
    if youth is None:
        _unknown(ctx)
        return
    await repo.set_municipality(conn, youth.id, msg.municipality)
    active = [m for m in await repo.meldingen_of_youth(conn, youth.id) if m.active]
    ctx.tell(Moved(active, msg.municipality))
    ctx.audit(
        "moved",
        ctx.partner_id,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        detail={"municipality": msg.municipality, "told": len(active)},
    )
    ctx.accept(None)


async def deceased(ctx: Context, msg: PersonDeceased) -> None:
    conn = ctx.uow.conn
    youth = await repo.lock_youth_by_hash(conn, ctx.pseudonyms.youth_by_bsn(msg.bsn))
    if youth is None:
        _unknown(ctx)
        return
    ctx.tell(
        *await purge_youth(
            conn,
            ctx.journal,
            youth.id,
            youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
            reason="deceased",
            actor=ctx.partner_id,
            now=ctx.now,
        )
    )
    ctx.accept(None)
