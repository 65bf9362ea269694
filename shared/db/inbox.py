"""The inbox: a (partner, message_id) row per handled inbound message.

Inserted in the same transaction as the message's effect, so a message handled twice
has one effect. Rows are kept for the dedup window (see retention).

Each row is given the message_id of the receipt that answers it. A message_id that
comes back after the window gets a new row, so its answer gets a new receipt id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.db.pool import Conn

DEDUP_WINDOW_DAYS = 45


async def claim(conn: Conn, partner_id: str, message_id: str) -> uuid.UUID | None:
    """The id for this message's receipt if it is new; None if it was handled before."""
    return (await claim_many(conn, [(partner_id, message_id)])).get((partner_id, message_id))


async def claim_many(
    conn: Conn, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """The (partner_id, message_id) pairs that are new, claimed in one statement, each
    with the id for its receipt."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """INSERT INTO inbox (partner_id, message_id)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT DO NOTHING RETURNING partner_id, message_id, receipt_id""",
        [partner for partner, _ in keys],
        [message_id for _, message_id in keys],
    )
    return {(r["partner_id"], r["message_id"]): r["receipt_id"] for r in rows}
