"""The audit log (who registered, withdrew, was signalled, looked, and when).

Kept apart from the meldingen and pseudonymous: it names partners and their own
melding references, and the youth only by a one-way audit pseudonym.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.db.pool import Conn


async def audit(
    conn: Conn,
    action: str,
    actor: str,
    *,
    melding_ref: str | None = None,
    youth_ref: str | None = None,
    match_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO audit_log (at, action, actor, melding_ref, youth_ref, match_id, detail)
           VALUES (coalesce($1, now()), $2, $3, $4, $5, $6, $7)""",
        at,
        action,
        actor,
        melding_ref,
        youth_ref,
        match_id,
        detail or {},
    )
