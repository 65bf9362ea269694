"""Rights of the youth and parents (access and erasure), answered by the municipality.

Identities are only stored as keyed hashes, so the operator names the youth (BSN, or
surname + birth date + sex) and the same hash finds the record.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from shared.contract.inbound import normalise_surname
from shared.db.audit import audit
from shared.db.pool import Conn
from shared.index import repository as repo
from shared.index.lifecycle import purge_youth
from shared.outgoing import OutboundMessage
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
    youth = await conn.fetchrow(
        """SELECT id, has_bsn, birth_date, municipality, created_at FROM youth
           WHERE identity_hash = $1""",
        identity_hash,
    )
    if youth is None:
        return None
    meldingen = await conn.fetch(
        """SELECT partner_id, melding_ref, state, reported_at, registered_at, reporter_name,
                  reporter_email, reporter_phone, expires_on, ended_at, end_reason, purge_on,
                  inform_targets, informed, informed_on, deferred_reason, inform_reminded_at
           FROM melding WHERE youth_id = $1 ORDER BY registered_at, id""",
        youth["id"],
    )
    matches = await conn.fetch(
        """SELECT g.id, g.formed_at, g.ended_at, lead.partner_id AS lead_partner
           FROM match_group g LEFT JOIN melding lead ON lead.id = g.lead_melding_id
           WHERE g.youth_id = $1 ORDER BY g.formed_at""",
        youth["id"],
    )
    log = await conn.fetch(
        """SELECT at, action, actor, melding_ref FROM audit_log
           WHERE youth_ref = $1 ORDER BY at, id""",
        youth_ref,
    )
    family = await _family(conn, region, youth["id"])
    await audit(conn, "subject_exported", operator, youth_ref=youth_ref)
    partners = region.partners_by_id
    return {
        "youth": {
            "identified_by": "bsn" if youth["has_bsn"] else "surname, birth date and sex",
            "birth_date": _iso(youth["birth_date"]),
            "municipality": youth["municipality"],
            "known_since": _iso(youth["created_at"]),
        },
        "meldingen": [
            {
                "organisation": partners[m["partner_id"]].name
                if m["partner_id"] in partners
                else m["partner_id"],
                **{k: _iso(v) for k, v in dict(m).items()},
            }
            for m in meldingen
        ],
        "matches": [
            {
                "match_id": str(g["id"]),
                "formed_at": _iso(g["formed_at"]),
                "ended_at": _iso(g["ended_at"]),
                "lead_partner": g["lead_partner"],
            }
            for g in matches
        ],
        "log": [{k: _iso(v) for k, v in dict(e).items()} for e in log],
        **family,
    }


async def _family(conn: Conn, region: RegionConfig, youth_id: int) -> dict[str, Any]:
    """The family facts as stored: keyed hashes (hex), never the parents' BSNs or the
    address; and the family matches of the youth's meldingen, naming the other
    organisation only (nothing about the other child)."""
    facts = await conn.fetchrow(
        """SELECT parent_hashes, address_hash, institutional, received_at FROM family_facts
           WHERE youth_id = $1""",
        youth_id,
    )
    lookup = await conn.fetchrow(
        "SELECT lookup_id, sent_at FROM family_lookup WHERE youth_id = $1", youth_id
    )
    matches = await conn.fetch(
        """SELECT f.id, f.relation, f.formed_at, own.melding_ref, other.partner_id
           FROM melding own
           JOIN family_match f ON own.id IN (f.melding_low, f.melding_high)
           JOIN melding other ON other.id = CASE WHEN f.melding_low = own.id
                                            THEN f.melding_high ELSE f.melding_low END
           WHERE own.youth_id = $1 ORDER BY f.formed_at, f.id""",
        youth_id,
    )
    partners = region.partners_by_id
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
                "counterpart_organisation": partners[m["partner_id"]].name
                if m["partner_id"] in partners
                else m["partner_id"],
            }
            for m in matches
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
) -> tuple[int, list[OutboundMessage]] | None:
    """Purge everything on the youth; owners of active meldingen get `melding.ended`
    with reason `erased`. Returns (meldingen removed, messages to emit)."""
    youth = await repo.lock_youth_by_hash(conn, identity_hash)
    if youth is None:
        return None
    count = len(await repo.meldingen_of_youth(conn, youth.id))
    out = await purge_youth(
        conn, youth.id, youth_ref=youth_ref, reason="erased", actor=operator, now=now
    )
    await audit(conn, "subject_erased", operator, youth_ref=youth_ref, at=now)
    return count, out
