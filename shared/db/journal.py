"""The one way to write audit entries and statistics facts.

Whatever a transaction does that the audit log or the statistics must show is noted
in its `Journal` as it happens, and the journal is written just before the
transaction commits: one statement for the entries and one for the facts, however
many there are. Domain code only notes; the owner of the transaction writes (the
matcher per transaction, the retention sweep per due row, the CLI and the portal per
request).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.db.audit import AuditEntry, write_entries
from shared.db.pool import Conn
from shared.db.stats import Fact, FactKind, write_facts


@dataclass
class Journal:
    entries: list[AuditEntry] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    def audit(
        self,
        action: str,
        actor: str,
        *,
        melding_ref: str | None = None,
        youth_ref: str | None = None,
        match_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
        portal_user: str | None = None,
    ) -> None:
        """Note an audit entry; without `at` it is stamped with the database's now()."""
        self.entries.append(
            AuditEntry(action, actor, melding_ref, youth_ref, match_id, detail, at, portal_user)
        )

    def count(
        self, kind: FactKind, *, at: datetime, sector: str, municipality: str, delta: int = 1
    ) -> None:
        """Note a statistics fact, counted in the month of `at`."""
        self.facts.append(Fact(kind, at, sector, municipality, delta))

    async def write(self, conn: Conn) -> None:
        """Write what was noted (and forget it, so a second write adds nothing)."""
        await write_entries(conn, self.entries)
        await write_facts(conn, self.facts)
        self.entries.clear()
        self.facts.clear()
