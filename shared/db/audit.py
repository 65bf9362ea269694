"""The audit log (who registered, withdrew, was signalled, looked, and when).

Kept apart from the meldingen and pseudonymous: it names partners and their own
melding references, and the youth only by a one-way audit pseudonym. An action taken
through the web portal also names the portal user who took it (`portal_user`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.db.pool import Conn


@dataclass(frozen=True)
class AuditEntry:
    action: str
    actor: str
    melding_ref: str | None = None
    youth_ref: str | None = None
    match_id: uuid.UUID | None = None
    detail: dict[str, Any] | None = None
    at: datetime | None = None
    portal_user: str | None = None


async def write_entries(conn: Conn, entries: Sequence[AuditEntry]) -> None:
    """All entries in one statement (written by `shared.db.journal.Journal`)."""
    if not entries:
        return
    await conn.execute(
        """INSERT INTO audit_log
               (at, action, actor, melding_ref, youth_ref, match_id, detail, portal_user)
           SELECT coalesce(at, now()), action, actor, melding_ref, youth_ref, match_id,
                  detail, portal_user
           FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::uuid[], $7::jsonb[], $8::text[])
                AS e(at, action, actor, melding_ref, youth_ref, match_id, detail,
                     portal_user)""",
        [e.at for e in entries],
        [e.action for e in entries],
        [e.actor for e in entries],
        [e.melding_ref for e in entries],
        [e.youth_ref for e in entries],
        [e.match_id for e in entries],
        [e.detail or {} for e in entries],
        [e.portal_user for e in entries],
    )
