"""What every matcher handler works with: one transaction, the region, the clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from shared.contract.errors import ErrorCode, ErrorItem
from shared.db.audit import AuditEntry, write_entries
from shared.db.outbox import UnitOfWork
from shared.db.pool import Conn
from shared.db.stats import Fact, FactKind, write_facts
from shared.envelopes import Command
from shared.pseudonym import Pseudonymizer
from shared.receipts import accepted, rejected
from shared.region.model import RegionConfig


@dataclass
class Journal:
    """The audit entries and statistics facts of a transaction, written in one
    statement each just before it commits (not one per row as they happen)."""

    entries: list[AuditEntry] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    async def write(self, conn: Conn) -> None:
        await write_entries(conn, self.entries)
        await write_facts(conn, self.facts)


@dataclass
class Context:
    uow: UnitOfWork
    region: RegionConfig
    pseudonyms: Pseudonymizer
    command: Command
    now: datetime
    journal: Journal

    @property
    def partner_id(self) -> str:
        return self.command.partner_id

    def audit(
        self,
        action: str,
        actor: str,
        *,
        melding_ref: str | None = None,
        youth_ref: str | None = None,
        match_id: uuid.UUID | None = None,
    ) -> None:
        self.journal.entries.append(
            AuditEntry(action, actor, melding_ref, youth_ref, match_id, at=self.now)
        )

    def count(self, kind: FactKind, *, sector: str, municipality: str) -> None:
        self.journal.facts.append(Fact(kind, self.now, sector, municipality))

    def accept(self, melding_ref: str | None, inform: list[str] | None = None) -> None:
        self.uow.emit(accepted(self.partner_id, self.command.message_id, melding_ref, inform))

    def reject(self, melding_ref: str | None, code: ErrorCode, loc: str, msg: str) -> None:
        self.uow.emit(
            rejected(
                self.partner_id,
                self.command.message_id,
                melding_ref,
                [ErrorItem(loc=loc, code=code, msg=msg)],
            )
        )
