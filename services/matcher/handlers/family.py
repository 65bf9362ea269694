"""person.family: the population register's facts on a youth's family (contract §8).

The facts replace earlier ones, stored only as keyed hashes; an open lookup is
answered by them. Family matches are looked for just before the transaction commits
(services/matcher/family.py), like those of a new melding.

A batch of facts is handled as a set: its youths are locked in one statement (in
identity order, as registrations lock theirs), each command is decided in order (a
later fact on a youth replaces an earlier one, as one by one), and the facts are
stored and the lookups dropped in one statement each.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.matcher.context import Context
from shared.contract.errors import ErrorCode
from shared.contract.inbound import PersonFamily
from shared.index import family_store
from shared.index import repository as repo
from shared.index.family import FamilyFacts
from shared.pseudonym import Pseudonymizer


def facts_of(msg: PersonFamily, pseudonyms: Pseudonymizer) -> FamilyFacts:
    address = msg.address
    return FamilyFacts(
        parents=frozenset(pseudonyms.parent_by_bsn(p) for p in msg.parents),
        address=pseudonyms.address_by_bag_id(address.id) if address else None,
        institutional=address.institutional if address else False,
    )


async def family_all(handled: Sequence[tuple[Context, PersonFamily]]) -> None:
    """Handle new person.family commands (each with its context), in order."""
    if not handled:
        return
    tx = handled[0][0].tx
    conn = tx.uow.conn
    identities = [tx.pseudonyms.youth_by_bsn(msg.bsn) for _, msg in handled]
    youths = await repo.lock_youths_by_hash(conn, identities)
    stored: dict[int, FamilyFacts] = {}
    for (ctx, msg), identity in zip(handled, identities, strict=True):
        youth = youths.get(identity)
        if youth is None:
            ctx.reject(None, ErrorCode.UNKNOWN_PERSON, "bsn", "nothing is stored on this person")
            continue
        stored[youth.id] = facts_of(msg, ctx.pseudonyms)
        ctx.audit(
            "family_facts",
            ctx.partner_id,
            youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
        )
        tx.family_youths.setdefault(youth.id, None)
        ctx.accept(None)
    await family_store.store_facts(conn, stored, tx.now)
    await family_store.drop_lookups(conn, sorted(stored))
