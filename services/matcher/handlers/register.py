"""melding.register: decide (taken or refused, and whom it matches), store (the
melding, its match group and lead, in the registration stage) and announce (who is told,
audited and counted)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from services.matcher.context import Context
from services.matcher.staging import RegistrationStage, StagedYouth
from shared.contract.errors import ErrorCode, ErrorItem
from shared.contract.inbound import MeldingRegister, Youth
from shared.dates import amsterdam_date, inform_targets
from shared.index.deadlines import expiry_date
from shared.index.decisions import LeadChanged, Matched
from shared.index.domain import (
    AlreadyRegistered,
    Contact,
    MemberSector,
    Registered,
    StoredMelding,
    choose_lead,
    decide_registration,
)
from shared.index.participants import participant
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


@dataclass(frozen=True)
class Joined:
    """A new melding in a match: its group, who is in it and who leads."""

    match_id: uuid.UUID
    newcomer: StoredMelding
    counterparts: Sequence[StoredMelding]
    # The group's active meldingen, oldest first (the newcomer among them).
    active: Sequence[StoredMelding]
    # The lead given now to a live group that had none; None when nothing changed.
    new_lead: int | None
    lead: StoredMelding | None


def register(
    ctx: Context, msg: MeldingRegister, stage: RegistrationStage, staged: StagedYouth
) -> None:
    """`staged` is the youth, locked by the stage: every registration on a youth is
    serialised, so of two meldingen at the same moment the second always sees the
    first. Decide, store, announce; the stage writes at the end of the run."""
    decision = decide(ctx, msg, staged)
    if not isinstance(decision, Registered):
        ctx.reject_all(msg.melding_ref, decision)
        stage.forget_if_empty(staged)
        return
    new = store(ctx, msg, stage, staged)
    if decision.is_match:
        joined = join(ctx, stage, staged, new, decision)
        announce_match(ctx, msg.youth.municipality, staged, joined)


def decide(ctx: Context, msg: MeldingRegister, staged: StagedYouth) -> Registered | list[ErrorItem]:
    """Whether the melding is taken (and whom it matches), or why not."""
    errors: list[ErrorItem] = []
    if (ctx.partner_id, msg.melding_ref) in ctx.used_refs:
        errors.append(
            ErrorItem(
                loc="melding_ref",
                code=ErrorCode.DUPLICATE_REF,
                msg="this melding_ref was used before by your organisation; choose a new one",
            )
        )
    decision = decide_registration(ctx.partner_id, staged.meldingen)
    if isinstance(decision, AlreadyRegistered):
        errors.append(
            ErrorItem(
                loc="youth",
                code=ErrorCode.ALREADY_REGISTERED,
                msg="your organisation already has an active melding on this youth: "
                + decision.existing_ref,
            )
        )
        return errors
    return errors or decision


def store(
    ctx: Context, msg: MeldingRegister, stage: RegistrationStage, staged: StagedYouth
) -> StoredMelding:
    """The new melding, staged, noted in the journal and accepted."""
    stage.note_facts(staged, birth_date=msg.youth.birth_date, municipality=msg.youth.municipality)
    reported_on = amsterdam_date(msg.reported_at)
    targets = inform_targets(msg.youth.birth_date, reported_on)
    new = stage.add_melding(
        staged,
        partner_id=ctx.partner_id,
        melding_ref=msg.melding_ref,
        reported_at=msg.reported_at,
        reporter=Contact(msg.reporter.name, str(msg.reporter.email), msg.reporter.phone),
        expires_on=expiry_date(msg.reported_at),
        inform_targets=targets,
    )
    ctx.used_refs.add((ctx.partner_id, msg.melding_ref))
    ctx.audit(
        "registered",
        ctx.partner_id,
        melding_ref=msg.melding_ref,
        youth_ref=ctx.pseudonyms.audit_ref(staged.identity),
        portal_user=ctx.portal_user,
    )
    ctx.count(
        "registered",
        sector=participant(ctx.region, new).sector,
        municipality=msg.youth.municipality,
    )
    ctx.accept(msg.melding_ref, inform=list(targets))
    if msg.youth.bsn is not None:
        # Family matches (or a lookup for the facts) are settled before commit.
        ctx.tx.family_youths[staged.youth.id] = msg.youth.bsn
    return new


def join(
    ctx: Context,
    stage: RegistrationStage,
    staged: StagedYouth,
    new: StoredMelding,
    decision: Registered,
) -> Joined:
    """The newcomer joins the youth's open group, if any (same match_id); otherwise a
    new group forms. Archived counterparts are recorded as members too. A live group
    without a lead gets one by the region's sector priority."""
    existing = staged.meldingen
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
    lead = next((m for m in [new, *decision.counterparts, *existing] if m.id == lead_id), None)
    return Joined(match_id, new, decision.counterparts, active, new_lead, lead)


def announce_match(
    ctx: Context, municipality_code: str, staged: StagedYouth, joined: Joined
) -> None:
    """Everyone in the match hears of it, the coordinator of where the youth lives too
    (ingest checked the code against the region; should the region have dropped it
    since, there is no coordinator to tell); a lead given now is announced. The match
    is counted once for every sector that takes part in it, and audited per melding."""
    ctx.tell(
        Matched(
            joined.match_id, joined.newcomer, joined.counterparts, joined.lead, municipality_code
        )
    )
    involved = [joined.newcomer, *joined.counterparts]
    for sector in sorted({participant(ctx.region, m).sector for m in involved}):
        ctx.count("matched", sector=sector, municipality=municipality_code)
    youth_ref = ctx.pseudonyms.audit_ref(staged.identity)
    for melding in involved:
        ctx.audit(
            "signalled",
            melding.partner_id,
            melding_ref=melding.melding_ref,
            youth_ref=youth_ref,
            match_id=joined.match_id,
        )
    if joined.new_lead is not None:
        ctx.tell(LeadChanged(joined.match_id, joined.active, joined.new_lead, municipality_code))
