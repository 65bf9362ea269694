"""Family matches and lookups, settled once per transaction just before it commits.

Every youth a command touched (a melding accepted, facts arrived) is still locked by
this transaction. With facts stored, the youth's parent and address hashes are locked
too (advisory, in key order), and only then are relatives looked for: two siblings'
transactions that share a hash run one after the other, so the second sees the first's
meldingen and facts, and the unique pair in `family_match` signals each pair once.
Without facts, a youth with a BSN gets a `person.lookup` to the registers (once; the
retention sweep asks again). A register that is slow or away holds up nothing: the
match is made when its facts arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.matcher.context import Transaction
from shared.announce import lookup_messages
from shared.db.stats import FactKind
from shared.index import family_store
from shared.index import repository as repo
from shared.index.decisions import FamilyMatched
from shared.index.domain import StoredMelding
from shared.index.family import FamilyFacts, FamilyPair, Relative, family_pairs
from shared.index.participants import participant
from shared.logs import get_logger

log = get_logger(__name__)


async def settle_family(tx: Transaction) -> None:
    youths = tx.family_youths
    if not youths or not tx.region.region.family_matching:
        return
    conn = tx.uow.conn
    facts = await family_store.facts_of(conn, sorted(youths))
    await _ask_registers(tx, [y for y in sorted(youths) if y not in facts])
    await family_store.lock_family_keys(conn, [k for f in facts.values() for k in f.hashes()])
    await _match(tx, facts)


async def _ask_registers(tx: Transaction, youth_ids: Sequence[int]) -> None:
    asked = [y for y in youth_ids if tx.family_youths[y] is not None]
    if not asked or not tx.region.population_registers:
        return
    conn = tx.uow.conn
    wanted: dict[int, tuple[uuid.UUID, str]] = {}
    for youth_id in await family_store.youths_without_facts(conn, asked):
        bsn = tx.family_youths[youth_id]
        assert bsn is not None
        wanted[youth_id] = (uuid.uuid4(), bsn)
    recorded = await family_store.add_lookups(
        conn,
        [
            (youth_id, lookup_id, tx.pseudonyms.seal_bsn(str(lookup_id), bsn))
            for youth_id, (lookup_id, bsn) in wanted.items()
        ],
        tx.now,
    )
    for youth_id in sorted(recorded):
        lookup_id, bsn = wanted[youth_id]
        tx.uow.emit(*lookup_messages(tx.region, lookup_id, bsn, tx.now))
        log.info("family_lookup_sent", lookup_id=str(lookup_id))


async def _match(tx: Transaction, facts: dict[int, FamilyFacts]) -> None:
    """The family matches of the youths with facts, as a set: their relatives, all
    meldingen involved, the new pairs and the youths' rows in one statement each. The
    pairs are those one youth after another would find (in youth order); a pair two
    youths of the transaction both find is stored and signalled once."""
    if not facts:
        return
    conn = tx.uow.conn
    rules = tx.region.region
    found = await family_store.relatives_of(conn, sorted(facts))
    if not found:
        return
    involved = sorted(set(found) | {r for rs in found.values() for r, _ in rs})
    meldingen = await repo.meldingen_of_youths(conn, involved)
    excluded = {tx.pseudonyms.address_by_bag_id(a) for a in rules.excluded_addresses}
    pairs = [
        pair
        for youth_id, relatives in sorted(found.items())
        for pair in family_pairs(
            meldingen.get(youth_id, []),
            facts[youth_id],
            [Relative(r, f, meldingen.get(r, [])) for r, f in relatives],
            enabled=[r.value for r in rules.family_match],
            excluded_addresses=excluded,
        )
    ]
    stored = await family_store.record_pairs(conn, pairs, tx.now)
    if not stored:
        return
    youth_of = {m.id: youth_id for youth_id, ms in meldingen.items() for m in ms}
    rows = await family_store.youth_rows(
        conn, sorted({youth_of[m.id] for _, pair in stored for m in (pair.low, pair.high)})
    )
    for family_match_id, pair in stored:
        _signal(tx, family_match_id, pair, youth_of, rows)


def _signal(
    tx: Transaction,
    family_match_id: uuid.UUID,
    pair: FamilyPair,
    youth_of: dict[int, int],
    youths: dict[int, family_store.YouthRow],
) -> None:
    region = tx.region
    sides: list[tuple[StoredMelding, family_store.YouthRow]] = [
        (m, youths[youth_of[m.id]]) for m in (pair.low, pair.high)
    ]
    tx.tell(
        FamilyMatched(
            family_match_id,
            pair.relation,
            (pair.low, pair.high),
            [youth.municipality for _, youth in sides],
        )
    )
    people = [participant(region, m) for m, _ in sides]
    kind: FactKind = "family_parent" if pair.relation == "parent" else "family_address"
    counted = {(p.sector, youth.municipality) for p, (_, youth) in zip(people, sides, strict=True)}
    for sector, municipality in sorted(counted):
        tx.journal.count(kind, at=tx.now, sector=sector, municipality=municipality)
    for melding, youth in sides:
        tx.journal.audit(
            "family_signalled",
            melding.partner_id,
            melding_ref=melding.melding_ref,
            youth_ref=tx.pseudonyms.audit_ref(youth.identity_hash),
            match_id=family_match_id,
            detail={"family": pair.relation},
            at=tx.now,
        )
    log.info("family_matched", family_match_id=str(family_match_id), relation=pair.relation)
