"""person.family: the population register's facts on a youth's family (contract §8).

The facts replace earlier ones, stored only as keyed hashes; an open lookup is
answered by them. Family matches are looked for just before the transaction commits
(services/matcher/family.py), like those of a new melding.
"""

from __future__ import annotations

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


async def family(ctx: Context, msg: PersonFamily) -> None:
    conn = ctx.uow.conn
    youth = await repo.lock_youth_by_hash(conn, ctx.pseudonyms.youth_by_bsn(msg.bsn))
    if youth is None:
        ctx.reject(None, ErrorCode.UNKNOWN_PERSON, "bsn", "nothing is stored on this person")
        return
    await family_store.store_facts(conn, youth.id, facts_of(msg, ctx.pseudonyms), ctx.now)
    await family_store.drop_lookup(conn, youth.id)
    ctx.audit(
        "family_facts",
        ctx.partner_id,
        youth_ref=ctx.pseudonyms.audit_ref(youth.identity_hash),
    )
    ctx.batch.family_youths.setdefault(youth.id, None)
    ctx.accept(None)
