"""Arrivals: one row per *publish* of a partner message, so each publish is answered
exactly once however often the broker delivers it.

The inbox (:mod:`shared.db.inbox`) knows which message_ids were handled; it cannot
tell a broker redelivery of the publish that was answered from a partner's new publish
of the same message_id (which must get `duplicate`). Arrivals can:

* A delivery that is certainly a fresh publish (``seen_before`` false: the broker's
  first delivery of it, not our retry or an operator's replay) gets a new arrival.
* A delivery that may have been handled before is bound to an *open* arrival of the
  same (partner, message_id): its publish may still be delivered, so this is that
  publish again. Without one, it is a new arrival: every earlier publish of that id
  was acknowledged, so this must be another one whose first handling was cut short
  before it was recorded.
* Each arrival is answered once (:func:`answer`, in the transaction that writes the
  answer): a copy of a command that reaches the matcher twice finds it answered.
* After the broker confirmed ingest's ack, the arrival is closed (:func:`close`, its
  row deleted). A delivery handed to a retry or parked queue is acked too, but its
  arrival stays open: the message lives on and comes back bound to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shared.db.pool import Conn


@dataclass(frozen=True)
class Arrival:
    """A delivery to record: its key, whether it is certainly a fresh publish, and the
    arrival this process already bound it to (a batch that failed after recording)."""

    partner_id: str
    message_id: str
    seen_before: bool
    known: uuid.UUID | None = None


async def record(conn: Conn, arrivals: Sequence[Arrival]) -> list[uuid.UUID]:
    """The arrival id of each delivery, in order: new rows for fresh publishes (one
    statement), bound or new ones for deliveries that may have been handled before."""
    ids: list[uuid.UUID | None] = [a.known for a in arrivals]
    fresh = [i for i, a in enumerate(arrivals) if a.known is None and not a.seen_before]
    if fresh:
        new = [uuid.uuid4() for _ in fresh]
        await conn.execute(
            """INSERT INTO arrival (id, partner_id, message_id)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])""",
            new,
            [arrivals[i].partner_id for i in fresh],
            [arrivals[i].message_id for i in fresh],
        )
        for i, arrival_id in zip(fresh, new, strict=True):
            ids[i] = arrival_id
    for i, a in enumerate(arrivals):
        if ids[i] is None:
            ids[i] = await _bind_or_insert(conn, a.partner_id, a.message_id)
    return [i for i in ids if i is not None]


async def _bind_or_insert(conn: Conn, partner_id: str, message_id: str) -> uuid.UUID:
    bound: uuid.UUID | None = await conn.fetchval(
        """SELECT id FROM arrival WHERE partner_id = $1 AND message_id = $2
           ORDER BY received_at LIMIT 1""",
        partner_id,
        message_id,
    )
    if bound is not None:
        return bound
    new = uuid.uuid4()
    await conn.execute(
        "INSERT INTO arrival (id, partner_id, message_id) VALUES ($1, $2, $3)",
        new,
        partner_id,
        message_id,
    )
    return new


async def answer(conn: Conn, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Mark arrivals answered; returns those that were not answered before, which the
    caller must now answer in this same transaction. Of concurrent callers for one
    arrival the later waits for the earlier to commit: exactly one gets it."""
    if not ids:
        return set()
    rows = await conn.fetch(
        """INSERT INTO arrival_answered (arrival_id) SELECT unnest($1::uuid[])
           ON CONFLICT DO NOTHING RETURNING arrival_id""",
        sorted(ids),  # one order for every transaction: no deadlock between two
    )
    return {r["arrival_id"] for r in rows}


async def close(conn: Conn, ids: Collection[uuid.UUID]) -> None:
    """No delivery of these publishes can come again: the broker confirmed the ack."""
    if ids:
        await conn.execute("DELETE FROM arrival WHERE id = ANY($1::uuid[])", list(ids))
