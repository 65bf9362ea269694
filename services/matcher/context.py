"""What every matcher handler works with: one transaction, the region, the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.contract.errors import ErrorCode, ErrorItem
from shared.db.outbox import UnitOfWork
from shared.envelopes import Command
from shared.pseudonym import Pseudonymizer
from shared.receipts import accepted, rejected
from shared.region.model import RegionConfig


@dataclass
class Context:
    uow: UnitOfWork
    region: RegionConfig
    pseudonyms: Pseudonymizer
    command: Command
    now: datetime

    @property
    def partner_id(self) -> str:
        return self.command.partner_id

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
