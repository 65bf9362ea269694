"""person.moved and person.deceased from the population register."""

from __future__ import annotations

import uuid

from services.matcher.context import Context
from shared.contract.errors import ErrorCode
from shared.contract.inbound import PersonDeceased, PersonMoved
from shared.contract.outbound import YouthMoved
from shared.db.audit import audit
from shared.envelopes import EmailJob, NotifyEvent, PartnerNotice, derived_id
from shared.index import repository as repo
from shared.index.lifecycle import end_melding
from shared.index.notices import notify_message, participant


def _unknown(ctx: Context) -> None:
    ctx.reject(None, ErrorCode.UNKNOWN_PERSON, "bsn", "nothing is stored on this person")


async def moved(ctx: Context, msg: PersonMoved) -> None:
    conn = ctx.uow.conn
    youth = await repo.lock_youth_by_hash(conn, ctx.pseudonyms.youth_by_bsn(msg.bsn))
    if youth is None:
        _unknown(ctx)
        return
    await conn.execute(
        "UPDATE youth SET municipality = $2 WHERE id = $1", youth.id, msg.municipality
    )
    active = [m for m in await repo.meldingen_of_youth(conn, youth.id) if m.active]
    event_id = uuid.uuid4()
    notices = [
        PartnerNotice(
            partner_id=m.partner_id,
            message_id=derived_id(event_id, "notice", m.partner_id, str(m.id)),
            message_type="youth.moved",
            body=YouthMoved(
                type="youth.moved", melding_ref=m.melding_ref, municipality=msg.municipality
            ).model_dump(mode="json"),
        )
        for m in active
    ]
    emails = []
    municipality = ctx.region.municipalities_by_code.get(msg.municipality)
    if municipality is not None and active:
        emails.append(
            EmailJob(
                message_id=derived_id(event_id, "email", "coordinator"),
                to=municipality.coordinator_email,
                template="youth_moved_coordinator",
                data={
                    "municipality": municipality.name,
                    "participants": [
                        {
                            **participant(ctx.region, m).as_counterpart(),
                            "melding_ref": m.melding_ref,
                        }
                        for m in active
                    ],
                },
            )
        )
    if notices or emails:
        ctx.uow.emit(notify_message(NotifyEvent(event_id=event_id, notices=notices, emails=emails)))
    await audit(
        conn,
        "moved",
        ctx.partner_id,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        detail={"municipality": msg.municipality, "told": len(active)},
        at=ctx.now,
    )
    ctx.accept(None)


async def deceased(ctx: Context, msg: PersonDeceased) -> None:
    conn = ctx.uow.conn
    youth = await repo.lock_youth_by_hash(conn, ctx.pseudonyms.youth_by_bsn(msg.bsn))
    if youth is None:
        _unknown(ctx)
        return
    youth_ref = ctx.pseudonyms.audit_ref(youth.identity_hash)
    for melding in await repo.meldingen_of_youth(conn, youth.id):
        ctx.uow.emit(
            *await end_melding(
                conn,
                ctx.region,
                melding,
                youth_id=youth.id,
                youth_ref=youth_ref,
                reason="deceased",
                actor=ctx.partner_id,
                now=ctx.now,
            )
        )
    ctx.accept(None)
