"""melding.register: store the melding, find the match, decide who is told."""

from __future__ import annotations

from services.matcher.context import Context
from services.matcher.staging import RegistrationStage, StagedYouth
from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import MeldingRegister, Youth
from shared.dates import amsterdam_date, inform_targets
from shared.index.deadlines import expiry_date
from shared.index.domain import (
    AlreadyRegistered,
    Contact,
    MemberSector,
    choose_lead,
    decide_registration,
)
from shared.index.lifecycle import lead_changed_message
from shared.index.notices import match_event, notify_message, participant
from shared.index.repository import NewYouth
from shared.index.subject import identity
from shared.pseudonym import Pseudonymizer


def identity_of(youth: Youth, pseudonyms: Pseudonymizer) -> bytes:
    return identity(
        pseudonyms,
        bsn=youth.bsn,
        surname=youth.surname,
        birth_date=youth.birth_date,
        sex=youth.sex,
    )


def youth_of(msg: MeldingRegister, identity_hash: bytes) -> NewYouth:
    return NewYouth(
        identity_hash,
        has_bsn=msg.youth.bsn is not None,
        birth_date=msg.youth.birth_date,
        municipality=msg.youth.municipality,
    )


async def register(
    ctx: Context, msg: MeldingRegister, stage: RegistrationStage, staged: StagedYouth
) -> None:
    """`staged` is the youth, locked by the stage: every registration on a youth is
    serialised, so of two meldingen at the same moment the second always sees the
    first."""
    errors: list[ErrorItem] = []
    if (ctx.partner_id, msg.melding_ref) in ctx.used_refs:
        errors.append(
            ErrorItem(
                loc="melding_ref",
                code=ErrorCode.DUPLICATE_REF,
                msg="this melding_ref was used before by your organisation; choose a new one",
            )
        )
    existing = list(staged.meldingen)
    decision = decide_registration(ctx.partner_id, existing)
    if isinstance(decision, AlreadyRegistered):
        errors.append(
            ErrorItem(
                loc="youth",
                code=ErrorCode.ALREADY_REGISTERED,
                msg="your organisation already has an active melding on this youth: "
                + decision.existing_ref,
            )
        )
    if errors or isinstance(decision, AlreadyRegistered):
        ctx.reject_all(msg.melding_ref, errors)
        stage.forget_if_empty(staged)
        return
    stage.note_facts(staged, birth_date=msg.youth.birth_date, municipality=msg.youth.municipality)
    reported_on = amsterdam_date(msg.reported_at)
    new = stage.add_melding(
        staged,
        partner_id=ctx.partner_id,
        melding_ref=msg.melding_ref,
        reported_at=msg.reported_at,
        reporter=Contact(msg.reporter.name, str(msg.reporter.email), msg.reporter.phone),
        expires_on=expiry_date(msg.reported_at),
        inform_targets=inform_targets(msg.youth.birth_date, reported_on),
    )
    ctx.used_refs.add((ctx.partner_id, msg.melding_ref))
    youth_ref = ctx.pseudonyms.audit_ref(staged.identity)
    ctx.audit(
        "registered",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=youth_ref,
        portal_user=ctx.portal_user,
    )
    ctx.count(
        "registered",
        sector=participant(ctx.region, new).sector,
        municipality=msg.youth.municipality,
    )
    ctx.accept(msg.melding_ref, inform=list(inform_targets(msg.youth.birth_date, reported_on)))
    if msg.youth.bsn is not None:
        # Family matches (or a lookup for the facts) are settled before commit.
        ctx.tx.family_youths[staged.youth.id] = msg.youth.bsn
    if not decision.is_match:
        return

    # The youth's open group, if any, is the match the newcomer joins (same match_id);
    # otherwise a new group forms. Archived counterparts are recorded as members too.
    group = staged.group
    current_lead = group.lead_melding_id if group is not None else None
    # Active members of the (new or open) group: the newcomer and the active
    # counterparts, since an open group holds every active melding on its youth.
    active = sorted(
        [new, *(m for m in decision.counterparts if m.active)],
        key=lambda m: (m.registered_at, m.id),
    )
    new_lead = None
    if current_lead is None and decision.forms_live_group:
        priority = ctx.region.region.regie_priority
        new_lead = choose_lead(
            [s.value for s in priority] if priority else None,
            [
                MemberSector(m.id, participant(ctx.region, m).sector, m.registered_at)
                for m in active
            ],
        )
    if group is None:
        match_id = stage.create_group(staged, live=decision.forms_live_group, lead=new_lead)
    else:
        match_id = group.id
        if new_lead is not None:
            stage.set_lead(staged, new_lead)
    stage.add_members(match_id, [new.id, *(m.id for m in decision.counterparts)])
    stage.mark_archive_signalled(staged, decision.archived_used)
    lead_id = new_lead if new_lead is not None else current_lead

    involved = [new, *decision.counterparts]
    lead_melding = next((m for m in involved if m.id == lead_id), None)
    if lead_melding is None and lead_id is not None:
        lead_melding = next((m for m in existing if m.id == lead_id), None)
    # Ingest checked the code against the region; the youth now lives there. (Should
    # the region have dropped it since, there is no coordinator to tell.)
    municipality = ctx.region.municipalities_by_code.get(msg.youth.municipality)
    event = match_event(
        match_id=match_id,
        newcomer=participant(ctx.region, new),
        counterparts=[participant(ctx.region, m) for m in decision.counterparts],
        lead=participant(ctx.region, lead_melding) if lead_melding else None,
        municipality=municipality,
    )
    ctx.uow.emit(notify_message(event))
    # A match counts once for every sector that takes part in it.
    for sector in sorted({participant(ctx.region, m).sector for m in involved}):
        ctx.count("matched", sector=sector, municipality=msg.youth.municipality)
    for melding in involved:
        ctx.audit(
            "signalled",
            melding.partner_id,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            match_id=match_id,
        )
    if new_lead is not None:
        ctx.uow.emit(
            await lead_changed_message(
                ctx.uow.conn,
                ctx.region,
                match_id,
                active,
                new_lead,
                youth_id=staged.youth.id,
                escalated=False,
                municipality_code=msg.youth.municipality,
            )
        )
