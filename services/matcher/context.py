"""What every matcher handler works with: the transaction its batch of commands
shares, the region, the clock, and its own command."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.announce import announce
from shared.contract.errors import ErrorCode, ErrorItem
from shared.db.journal import Journal
from shared.db.outbox import UnitOfWork
from shared.db.stats import FactKind
from shared.envelopes import Command
from shared.index.decisions import Decision
from shared.pseudonym import Pseudonymizer
from shared.receipts import accepted, rejected
from shared.region.model import RegionConfig


@dataclass
class Transaction:
    """What the commands handled in one transaction share."""

    uow: UnitOfWork
    region: RegionConfig
    pseudonyms: Pseudonymizer
    now: datetime
    # (partner_id, melding_ref) pairs known to be used: looked up for the whole transaction
    # at its start, then added to as the transaction registers meldingen.
    used_refs: set[tuple[str, str]]
    # Written just before the transaction commits.
    journal: Journal = field(default_factory=Journal)
    # Youths whose family matches are looked for just before commit (a melding was
    # accepted, or family facts arrived), each with the BSN a registration gave, for a
    # person.lookup when no facts are stored (services/matcher/family.py).
    family_youths: dict[int, str | None] = field(default_factory=dict)

    def tell(self, *decisions: Decision) -> None:
        """Announce what the decisions say must be told, when the transaction commits."""
        self.uow.emit(*announce(self.region, decisions))


@dataclass
class Context:
    tx: Transaction
    command: Command
    # The id of the receipt that answers this handling of the command (its inbox row's).
    receipt_id: uuid.UUID

    @property
    def uow(self) -> UnitOfWork:
        return self.tx.uow

    @property
    def region(self) -> RegionConfig:
        return self.tx.region

    @property
    def pseudonyms(self) -> Pseudonymizer:
        return self.tx.pseudonyms

    @property
    def now(self) -> datetime:
        return self.tx.now

    @property
    def used_refs(self) -> set[tuple[str, str]]:
        return self.tx.used_refs

    @property
    def partner_id(self) -> str:
        return self.command.partner_id

    @property
    def portal_user(self) -> str | None:
        """The portal user who sent the command for the partner (None: its own system)."""
        return self.command.portal_user

    @property
    def journal(self) -> Journal:
        return self.tx.journal

    def tell(self, *decisions: Decision) -> None:
        self.tx.tell(*decisions)

    def audit(
        self,
        action: str,
        actor: str,
        *,
        melding_ref: str | None = None,
        youth_ref: str | None = None,
        match_id: uuid.UUID | None = None,
        portal_user: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Note an audit entry of this transaction, at its timestamp."""
        self.journal.audit(
            action,
            actor,
            melding_ref=melding_ref,
            youth_ref=youth_ref,
            match_id=match_id,
            detail=detail,
            at=self.now,
            portal_user=portal_user,
        )

    def count(
        self,
        kind: FactKind,
        *,
        sector: str,
        municipality: str,
        at: datetime | None = None,
        delta: int = 1,
    ) -> None:
        """Note a statistics fact, by default in the month of this transaction."""
        self.journal.count(
            kind, at=at or self.now, sector=sector, municipality=municipality, delta=delta
        )

    def accept(self, melding_ref: str | None, inform: list[str] | None = None) -> None:
        self.uow.emit(
            accepted(
                self.partner_id,
                self.command.message_id,
                melding_ref,
                inform,
                receipt_id=self.receipt_id,
            )
        )

    def reject(self, melding_ref: str | None, code: ErrorCode, loc: str, msg: str) -> None:
        self.reject_all(melding_ref, [ErrorItem(loc=loc, code=code, msg=msg)])

    def reject_all(self, melding_ref: str | None, errors: list[ErrorItem]) -> None:
        self.uow.emit(
            rejected(
                self.partner_id,
                self.command.message_id,
                melding_ref,
                errors,
                receipt_id=self.receipt_id,
            )
        )
