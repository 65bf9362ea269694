"""The inbox: a (partner, message_id) row per handled inbound message.

Inserted in the same transaction as the message's effect, so a message handled twice
has one effect. Rows are kept for the dedup window (see retention).
"""

from __future__ import annotations

from shared.db.pool import Conn

DEDUP_WINDOW_DAYS = 45


async def claim(conn: Conn, partner_id: str, message_id: str) -> bool:
    """True if this message is new; False if it was handled before."""
    row = await conn.fetchval(
        """INSERT INTO inbox (partner_id, message_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING RETURNING true""",
        partner_id,
        message_id,
    )
    return bool(row)
