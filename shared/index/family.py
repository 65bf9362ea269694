"""The family match rules (contract §8), free of I/O.

Two active meldingen of different partners on different youths form a family match
when the youths share a parent, or share an address that is neither institutional
nor excluded by the region, and the region's `family_match` names that relation.
Facts are compared as keyed hashes only; a shared parent wins over a shared address.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.index.domain import StoredMelding

Relation = Literal["parent", "address"]


@dataclass(frozen=True)
class FamilyFacts:
    """A youth's family as the register gave it, in hashes."""

    parents: frozenset[bytes]
    address: bytes | None
    institutional: bool

    def hashes(self) -> list[bytes]:
        """Every hash another youth could share with this one."""
        return sorted(self.parents | ({self.address} if self.address else set()))


@dataclass(frozen=True)
class Relative:
    """Another youth whose facts share something with ours, with its meldingen."""

    youth_id: int
    facts: FamilyFacts
    meldingen: Sequence[StoredMelding]


@dataclass(frozen=True)
class FamilyPair:
    """Two meldingen to signal, the lower id first (the stored pair's order)."""

    low: StoredMelding
    high: StoredMelding
    relation: Relation


def shared_relation(
    ours: FamilyFacts,
    theirs: FamilyFacts,
    *,
    enabled: Collection[str],
    excluded_addresses: Collection[bytes],
) -> Relation | None:
    """How two youths are one family, by the relations the region turned on."""
    if "parent" in enabled and ours.parents & theirs.parents:
        return "parent"
    if (
        "address" in enabled
        and ours.address is not None
        and ours.address == theirs.address
        and not (ours.institutional or theirs.institutional)
        and ours.address not in excluded_addresses
    ):
        return "address"
    return None


def family_pairs(
    own: Iterable[StoredMelding],
    facts: FamilyFacts,
    relatives: Iterable[Relative],
    *,
    enabled: Collection[str],
    excluded_addresses: Collection[bytes],
) -> list[FamilyPair]:
    """The pairs of one youth's active meldingen (`own`) with its relatives' active
    meldingen of other partners. Archived meldingen take no part; a partner's own
    meldingen never pair with each other. Pairs signalled before are filtered out by
    the store, not here."""
    active = [m for m in own if m.active]
    pairs: list[FamilyPair] = []
    for relative in relatives:
        relation = shared_relation(
            facts, relative.facts, enabled=enabled, excluded_addresses=excluded_addresses
        )
        if relation is None:
            continue
        for ours in active:
            for theirs in relative.meldingen:
                if not theirs.active or theirs.partner_id == ours.partner_id:
                    continue
                low, high = sorted((ours, theirs), key=lambda m: m.id)
                pairs.append(FamilyPair(low, high, relation))
    return pairs
