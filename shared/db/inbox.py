"""The inbox: a (partner, message_id) row per handled inbound message.

Inserted in the same transaction as the message's effect, so a message handled twice
has one effect. Rows are kept for the dedup window (see retention).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.db.pool import Conn

DEDUP_WINDOW_DAYS = 45


async def claim(conn: Conn, partner_id: str, message_id: str) -> bool:
    """True if this message is new; False if it was handled before."""
    return bool(await claim_many(conn, [(partner_id, message_id)]))


async def claim_many(conn: Conn, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (partner_id, message_id) pairs that are new, claimed in one statement."""
    if not keys:
        return set()
    rows = await conn.fetch(
        """INSERT INTO inbox (partner_id, message_id)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT DO NOTHING RETURNING partner_id, message_id""",
        [partner for partner, _ in keys],
        [message_id for _, message_id in keys],
    )
    return {(r["partner_id"], r["message_id"]) for r in rows}
