"""The matcher's handler: commands answered with receipts, in one transaction per
batch of commands (one command, or all that queued up together)."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import pydantic

from services.matcher.context import Context, Transaction
from services.matcher.family import settle_family
from services.matcher.handlers.family import family_all
from services.matcher.handlers.informed import informed
from services.matcher.handlers.person import deceased, moved
from services.matcher.handlers.regie import assign, claim
from services.matcher.handlers.register import identity_of, register, youth_of
from services.matcher.handlers.withdraw import withdraw
from services.matcher.staging import RegistrationStage
from shared.amqp.consuming import Codec, Delivery, PoisonMessage, Unfinished
from shared.announce import merge_notify_messages
from shared.clock import Clock, utcnow
from shared.commands import command_message
from shared.contract.errors import NOT_A_PARTNER_ANY_MORE, ErrorItem
from shared.contract.inbound import MeldingRegister, PersonFamily
from shared.contract.portal import NO_COORDINATOR
from shared.db import arrivals, inbox
from shared.db.outbox import Outbox, UnitOfWork
from shared.db.pool import Conn
from shared.envelopes import COMMAND_BUNDLE_TYPE, Command, unpack
from shared.index import repository as repo
from shared.lanes import Lane, in_lane
from shared.logs import get_logger, message_context
from shared.pseudonym import Pseudonymizer
from shared.receipts import answer_to_handled, rejected
from shared.region.model import RegionConfig
from shared.region.store import RegionCache

log = get_logger(__name__)

# New registrations and family facts are handled as sets, by
# `MatcherHandler._register_all` and `family_all`.
HANDLERS: dict[str, Callable[[Context, Any], Awaitable[None]]] = {
    "melding.withdraw": withdraw,
    "regie.claim": claim,
    "regie.assign": assign,
    "melding.informed": informed,
    "person.moved": moved,
    "person.deceased": deceased,
}


def _context_of(command: Command) -> contextlib.AbstractContextManager[None]:
    return message_context(
        message_id=command.message_id,
        correlation_id=command.message_id,
        partner=command.partner_id,
        type=command.message.type,
    )


def parse_commands(delivery: Delivery) -> list[Command]:
    """The commands a message carries (one, or a bundle from ingest), each marked seen
    before when the message itself was."""
    try:
        commands = unpack(delivery.body, delivery.message.type, COMMAND_BUNDLE_TYPE, Command)
    except pydantic.ValidationError as exc:
        raise PoisonMessage("not a valid internal command") from exc
    if delivery.seen_before:
        return [c.model_copy(update={"seen_before": True}) for c in commands]
    return commands


def command_codec(lane: Lane) -> Codec[Command]:
    """The matcher's messages as commands; a failed bundle's commands go on, one
    message each, in the lane they came in."""
    return Codec(parse_commands, resend=lambda command: command_message(command, lane))


def _refusal(region: RegionConfig, command: Command) -> ErrorItem | None:
    """Why a sender that ingest let through may not act any more: a partner that
    retired (or left the file), or a coordinator whose municipality or portal left the
    region config since."""
    if command.coordinator is not None:
        gone = region.portal is None or command.coordinator not in region.municipalities_by_code
        return NO_COORDINATOR if gone else None
    return None if region.takes_part(command.partner_id) else NOT_A_PARTNER_ANY_MORE


def _refuse(uow: UnitOfWork, command: Command, receipt_id: uuid.UUID, error: ErrorItem) -> None:
    log.info("inbound_from_retired_partner")
    ref = getattr(command.message, "melding_ref", None)
    uow.emit(rejected(command.partner_id, command.message_id, ref, [error], receipt_id=receipt_id))


async def _unanswered(conn: Conn, commands: Sequence[Command]) -> list[Command]:
    """The commands still to be answered, their arrivals marked answered: a publish
    that ingest forwarded twice (it died before its ack) is answered by the first copy
    to get here. Commands without an arrival are all kept (see `_apply`)."""
    fresh = await arrivals.answer(conn, {c.arrival_id for c in commands if c.arrival_id})
    kept = []
    for command in commands:
        if command.arrival_id is not None:
            if command.arrival_id not in fresh:
                with _context_of(command):
                    log.info("inbound_already_handled", answered=False)
                continue
            fresh.discard(command.arrival_id)  # a second copy in this batch is answered
        kept.append(command)
    return kept


def _set_kind(marked: tuple[Command, uuid.UUID | None]) -> type | None:
    """The message type a new command is handled as a set with, or None."""
    command, receipt_id = marked
    if receipt_id is not None and isinstance(command.message, MeldingRegister | PersonFamily):
        return type(command.message)
    return None


class MatcherHandler:
    def __init__(
        self,
        outbox: Outbox,
        region: RegionCache,
        pseudonyms: Pseudonymizer,
        clock: Clock = utcnow,
        *,
        lane: Lane = Lane.LIVE,
    ) -> None:
        self._outbox = outbox
        self._region = region
        self._pseudonyms = pseudonyms
        self._clock = clock
        # The notify events of a command go on in the lane it came in.
        self._lane = lane

    async def __call__(self, commands: Sequence[Command]) -> None:
        await self._run(commands)

    async def _run(self, commands: Sequence[Command]) -> None:
        """Family facts from the register go in a transaction of their own, after the
        rest: mixed with registrations in arrival order, two batches would lock their
        youths in different orders and deadlock. When the second transaction fails
        after the first committed, only the facts go round again (`Unfinished`: the
        consumer re-sends each as a message of its own)."""
        facts = [c for c in commands if isinstance(c.message, PersonFamily)]
        rest = [c for c in commands if not isinstance(c.message, PersonFamily)]
        if rest:
            await self._transaction(rest)
        if not facts:
            return
        try:
            await self._transaction(facts)
        except Exception as exc:
            if not rest:
                raise
            # The rest is committed (with its receipts): only the facts go round again.
            raise Unfinished(facts) from exc

    async def _transaction(self, commands: Sequence[Command]) -> None:
        """All commands in one transaction: each sees the effects of those before it
        (two meldingen on one youth in a batch match as if they came one by one). Any
        failure rolls the whole batch back."""
        identities = {
            id(c): identity_of(c.message.youth, self._pseudonyms)
            for c in commands
            if isinstance(c.message, MeldingRegister)
        }
        if all(isinstance(c.message, PersonFamily) for c in commands):
            # Facts only: in identity order too, as each locks its youth (stable: the
            # later facts on one youth still replace the earlier).
            commands = sorted(
                commands,
                key=lambda c: self._pseudonyms.youth_by_bsn(cast(PersonFamily, c.message).bsn),
            )
        elif len(identities) == len(commands):
            # A batch of registrations only (bulk onboarding) is handled in identity
            # order, as the stage locks the youths, so two replicas' batches never
            # deadlock on each other. The sort is stable: meldingen on one youth keep
            # their order. Mixed batches keep their arrival order (a withdraw must not
            # overtake its registration).
            commands = sorted(commands, key=lambda c: identities[id(c)])
        async with self._outbox.unit_of_work() as uow:
            conn = uow.conn
            # Read under a share lock: a partner retired by a `region apply` that
            # committed first is refused here, even while the cache is behind.
            region = await self._region.current(conn)
            commands = await _unanswered(conn, commands)
            unclaimed = await inbox.claim_many(
                conn, [(c.partner_id, c.message_id) for c in commands]
            )
            registrations = [c for c in commands if isinstance(c.message, MeldingRegister)]
            used_refs = await repo.refs_used(
                conn,
                [
                    (c.partner_id, cast(MeldingRegister, c.message).melding_ref)
                    for c in registrations
                ],
            )
            tx = Transaction(uow, region, self._pseudonyms, self._clock(), used_refs)
            # Each command with the id for its receipt, or None when it is not new (a
            # second copy in the same batch is not new either).
            marked = []
            for command in commands:
                receipt_id = unclaimed.pop((command.partner_id, command.message_id), None)
                refusal = _refusal(region, command) if receipt_id is not None else None
                if receipt_id is not None and refusal is not None:
                    with _context_of(command):
                        _refuse(uow, command, receipt_id, refusal)
                    continue
                marked.append((command, receipt_id))
            # Runs of new registrations, and of new family facts, are handled as a set
            # (see staging.py, handlers/family.py); anything else one command at a
            # time, in order.
            for kind, run in itertools.groupby(marked, key=_set_kind):
                if kind is MeldingRegister:
                    await self._register_all(tx, list(run), identities)
                elif kind is PersonFamily:
                    await family_all(
                        [
                            (Context(tx, c, r), cast(PersonFamily, c.message))
                            for c, r in run
                            if r is not None
                        ]
                    )
                else:
                    for command, receipt_id in run:
                        with _context_of(command):
                            await self._apply(tx, command, receipt_id)
            await settle_family(tx)
            await tx.journal.write(conn)
            uow.messages[:] = in_lane(merge_notify_messages(uow.messages), self._lane)

    async def _register_all(
        self,
        tx: Transaction,
        claimed: Sequence[tuple[Command, uuid.UUID | None]],
        identities: dict[int, bytes],
    ) -> None:
        conn = tx.uow.conn
        messages = [cast(MeldingRegister, c.message) for c, _ in claimed]
        stage = await RegistrationStage.prepare(
            conn,
            [youth_of(m, identities[id(c)]) for (c, _), m in zip(claimed, messages, strict=True)],
        )
        for (command, receipt_id), message in zip(claimed, messages, strict=True):
            assert receipt_id is not None  # only new registrations are staged
            with _context_of(command):
                register(
                    Context(tx, command, receipt_id),
                    message,
                    stage,
                    stage.youths[identities[id(command)]],
                )
        await stage.flush(conn, tx.now)

    async def _apply(self, tx: Transaction, command: Command, receipt_id: uuid.UUID | None) -> None:
        """Handle a new command (`receipt_id` from its inbox claim), or answer one that
        the inbox already holds (`receipt_id` None)."""
        message = command.message
        if receipt_id is None:
            answers = answer_to_handled(
                command.partner_id,
                command.message_id,
                # With an arrival, this publish was not answered yet (`_unanswered`):
                # the inbox holds another publish of its message_id.
                seen_before=command.seen_before and command.arrival_id is None,
                melding_ref=getattr(message, "melding_ref", None),
            )
            tx.uow.emit(*answers)
            log.info("inbound_already_handled", answered=bool(answers))
            return
        await HANDLERS[message.type](Context(tx, command, receipt_id), message)
