"""The portal's entries in the audit log (NEN 7513): every look at a melding and every
action, with the organisation as actor and the portal user who acted."""

from __future__ import annotations

import uuid
from typing import Any

from services.portal.accounts import User
from shared.db.journal import Journal
from shared.db.pool import Conn

# Actor of an entry about a login attempt on no known account.
UNKNOWN_ACTOR = "portal"
# Actor of a coordinator's entries (no partner); `portal_user` names the account and
# `detail` the match.
COORDINATOR_ACTOR = "coordinator"


async def audit_user(
    conn: Conn,
    user: User,
    action: str,
    *,
    melding_ref: str | None = None,
    match_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    journal = Journal()
    journal.audit(
        action,
        COORDINATOR_ACTOR if user.is_coordinator else user.partner_id,
        melding_ref=melding_ref,
        match_id=match_id,
        detail=detail,
        portal_user=user.actor,
    )
    await journal.write(conn)
