"""Finding the sender's own melding; another partner's ref is simply unknown."""

from __future__ import annotations

from dataclasses import dataclass

from services.matcher.context import Context
from shared.contract.errors import ErrorCode
from shared.index import repository as repo
from shared.index.domain import StoredMelding


def _unknown(ctx: Context, melding_ref: str) -> None:
    ctx.reject(
        melding_ref,
        ErrorCode.UNKNOWN_MELDING,
        "melding_ref",
        "your organisation has no melding with this melding_ref",
    )


@dataclass(frozen=True)
class OwnMelding:
    row: repo.MeldingRow
    youth: repo.Youth  # locked for the rest of the transaction

    @property
    def melding(self) -> StoredMelding:
        return self.row.melding


async def find_own_active(ctx: Context, melding_ref: str) -> OwnMelding | None:
    """The partner's active melding by ref with its youth, or None after writing the
    rejection.

    The youth's row is locked before the answer is final: the melding is read again
    under the lock, so a withdraw, claim or sweep that got there first is seen (two
    withdraws of one melding end it once; a claim never acts on an ended melding).
    """
    conn = ctx.uow.conn
    found = await repo.find_melding(conn, ctx.partner_id, melding_ref)
    youth = await repo.lock_youth(conn, found.youth_id) if found is not None else None
    if youth is not None:
        found = await repo.find_melding(conn, ctx.partner_id, melding_ref)
    if found is None or youth is None:
        _unknown(ctx, melding_ref)
        return None
    if not found.melding.active:
        ctx.reject(
            melding_ref, ErrorCode.NOT_ACTIVE, "melding_ref", "this melding has already ended"
        )
        return None
    return OwnMelding(found, youth)
