"""Rights of the youth and parents (access and erasure), answered by the municipality.

Identities are only stored as keyed hashes, so the operator names the youth (BSN, or
surname + birth date + sex) and the same hash finds the record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.contract.inbound import normalise_surname
from shared.db.journal import Journal
from shared.db.pool import Conn
from shared.index import family_store
from shared.index import repository as repo
from shared.index.decisions import Decision
from shared.index.lifecycle import purge_youth
from shared.pseudonym import Pseudonymizer
from shared.region.model import RegionConfig


def identity(
    pseudonyms: Pseudonymizer,
    *,
    bsn: str | None,
    surname: str | None = None,
    birth_date: date | None = None,
    sex: str | None = None,
) -> bytes:
    if bsn:
        return pseudonyms.youth_by_bsn(bsn)
    if surname and birth_date and sex:
        return pseudonyms.youth_without_bsn(normalise_surname(surname), birth_date, sex)
    raise ValueError("name the youth by BSN, or by surname, birth date and sex")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


async def export(
    conn: Conn, region: RegionConfig, identity_hash: bytes, youth_ref: str, *, operator: str
) -> dict[str, Any] | None:
    """Everything stored on the youth, as a document for the youth or parents."""
    record = await repo.subject_record(conn, identity_hash, youth_ref)
    if record is None:
        return None
    family = await family_store.family_record(conn, record.youth["id"])
    journal = Journal()
    journal.audit("subject_exported", operator, youth_ref=youth_ref)
    await journal.write(conn)
    youth = record.youth
    return {
        "youth": {
            "identified_by": "bsn" if youth["has_bsn"] else "surname, birth date and sex",
            "birth_date": _iso(youth["birth_date"]),
            "municipality": youth["municipality"],
            "known_since": _iso(youth["created_at"]),
        },
        "meldingen": [
            {
                "organisation": _organisation(region, m["partner_id"]),
                **{k: _iso(v) for k, v in m.items()},
            }
            for m in record.meldingen
        ],
        "matches": [
            {
                "match_id": str(g["id"]),
                "formed_at": _iso(g["formed_at"]),
                "ended_at": _iso(g["ended_at"]),
                "lead_partner": g["lead_partner"],
            }
            for g in record.matches
        ],
        "log": [{k: _iso(v) for k, v in e.items()} for e in record.log],
        **_family(region, family),
    }


def _organisation(region: RegionConfig, partner_id: str) -> str:
    partner = region.partners_by_id.get(partner_id)
    return partner.name if partner is not None else partner_id


def _family(region: RegionConfig, family: family_store.FamilyRecord) -> dict[str, Any]:
    """The family facts as stored: keyed hashes (hex), never the parents' BSNs or the
    address; and the family matches of the youth's meldingen, naming the other
    organisation only (nothing about the other child)."""
    facts, lookup = family.facts, family.lookup
    return {
        "family_facts": None
        if facts is None
        else {
            "parents": [bytes(h).hex() for h in facts["parent_hashes"]],
            "address": bytes(facts["address_hash"]).hex() if facts["address_hash"] else None,
            "institutional": facts["institutional"],
            "received_at": _iso(facts["received_at"]),
            "note": "keyed hashes: the index keeps no parent BSN and no address",
        },
        "family_lookup": None
        if lookup is None
        else {"lookup_id": str(lookup["lookup_id"]), "sent_at": _iso(lookup["sent_at"])},
        "family_matches": [
            {
                "family_match_id": str(m["id"]),
                "relation": m["relation"],
                "formed_at": _iso(m["formed_at"]),
                "melding_ref": m["melding_ref"],
                "counterpart_organisation": _organisation(region, m["partner_id"]),
            }
            for m in family.matches
        ],
    }


async def erase(
    conn: Conn,
    region: RegionConfig,
    identity_hash: bytes,
    youth_ref: str,
    *,
    operator: str,
    now: datetime,
) -> tuple[int, list[Decision]] | None:
    """Purge everything on the youth; owners of active meldingen get `melding.ended`
    with reason `erased`. Returns (meldingen removed, who is to be told what)."""
    youth = await repo.lock_youth_by_hash(conn, identity_hash)
    if youth is None:
        return None
    count = len(await repo.meldingen_of_youth(conn, youth.id))
    journal = Journal()
    out = await purge_youth(
        conn, journal, youth.id, youth_ref=youth_ref, reason="erased", actor=operator, now=now
    )
    journal.audit("subject_erased", operator, youth_ref=youth_ref, at=now)
    await journal.write(conn)
    return count, out
