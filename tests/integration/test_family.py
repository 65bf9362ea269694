"""The family match (contract §8) through the running pipeline: lookups to the
register, facts back, a family.notice once per pair that never names the other child,
the e-mails, the region's relations, and a register that is away holding up nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient, Received
from tests.conftest import System, apply_region
from tests.integration.test_matching import Mailbox, codes, mailboxes
from tests.support import RegionUnderTest, eventually, mails, region_document, run_cli, valid_bsn

PARENT = valid_bsn(90_001)
OTHER_PARENT = valid_bsn(90_002)
HOME = "0363200000123456"
SHELTER = "0363200000999999"


def family_body(
    bsn: str, parents: list[str], address: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "person.family",
        "bsn": bsn,
        "parents": parents,
        "address": None
        if address is None
        else {"id": address, "institutional": extra.pop("institutional", False)},
        **extra,
    }


async def lookup_for(brp: Mailbox, bsn: str) -> Received:
    return await brp.get(lambda m: m.type == "person.lookup" and m.body["bsn"] == bsn)


async def answer(brp: Mailbox, bsn: str, parents: list[str], address: str | None = None) -> None:
    asked = await lookup_for(brp, bsn)
    body = family_body(bsn, parents, address, lookup_id=asked.body["lookup_id"])
    assert (await brp.send(body))["status"] == "accepted"


async def test_siblings_with_a_shared_parent_form_one_family_match(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    anna, bram = valid_bsn(9101), valid_bsn(9102)
    assert (await box["school"].register("S-1", bsn=anna))["status"] == "accepted"
    assert (await box["jeugdteam"].register("T-1", bsn=bram, municipality="0599"))[
        "status"
    ] == "accepted"
    # The register is asked once per youth, with the BSN: the only message that has one.
    await answer(box["brp"], anna, [PARENT], HOME)
    await answer(box["brp"], bram, [OTHER_PARENT, PARENT])

    school = await box["school"].notice("family.notice", "S-1")
    team = await box["jeugdteam"].notice("family.notice", "T-1")
    assert school.body["family_match_id"] == team.body["family_match_id"]
    assert school.body["relation"] == team.body["relation"] == "parent"
    assert school.body["counterpart"] == {
        "partner": "jeugdteam",
        "organisation": "Jeugdteam Noord",
        "sector": "jeugdhulp",
        "reporter": {
            "name": "Contact jeugdteam",
            "email": "contact@jeugdteam.example",
            "phone": "+31201234567",
        },
        "registered_at": school.body["counterpart"]["registered_at"],
    }
    assert team.body["counterpart"]["partner"] == "school"
    # Nothing that points at the other child: not its melding_ref, not a BSN.
    for notice, other_ref in ((school, "T-1"), (team, "S-1")):
        text = json.dumps(notice.body)
        assert other_ref not in text
        assert anna not in text and bram not in text and PARENT not in text
    for pid in ("school", "jeugdteam", "jgz", "huisarts"):
        assert await box[pid].rest(0.5) == [], pid
    assert [m.type for m in await box["brp"].rest(0.3)] == []

    # E-mails: both reporters, and the coordinator of each youth's municipality.
    family_id = school.body["family_match_id"]

    async def mailed() -> bool:
        return len([m for m in mails(test_region) if family_id in m.get_content()]) == 4

    await eventually(mailed)
    sent = [m for m in mails(test_region) if family_id in m.get_content()]
    assert sorted(str(m["To"]) for m in sent) == [
        "contact@jeugdteam.example",
        "contact@school.example",
        "regie@amsterdam.example",
        "regie@rotterdam.example",
    ]
    for message in sent:
        text = message.get_content()
        assert "gezinsmatch" in str(message["Subject"]).lower()
        assert anna not in text and bram not in text and PARENT not in text
        if str(message["To"]) == "contact@school.example":
            assert "S-1" in text and "T-1" not in text and "Jeugdteam Noord" in text

    # Stored as keyed hashes only; the lookups are answered and gone.
    facts = await db.fetch("SELECT parent_hashes, address_hash FROM family_facts")
    assert len(facts) == 2
    stored = b"".join(bytes(h) for r in facts for h in r["parent_hashes"])
    assert PARENT.encode() not in stored
    assert await db.fetchval("SELECT count(*) FROM family_lookup") == 0
    assert await db.fetchval("SELECT count(*) FROM family_match") == 1
    kinds = await db.fetch(
        "SELECT sector, municipality, sum(delta)::int AS n FROM stats_fact"
        " WHERE kind = 'family_parent' GROUP BY 1, 2 ORDER BY 1"
    )
    assert [(r["sector"], r["municipality"], r["n"]) for r in kinds] == [
        ("jeugdhulp", "0599", 1),
        ("onderwijs", "0363", 1),
    ]
    shown = await run_cli(test_region, "stats", "--csv")
    assert shown.output.splitlines()[0].endswith(",family_parent,family_address")


async def test_a_later_melding_in_the_family_is_matched_once_per_pair(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """Facts stored first; meldingen after. A partner's own meldingen never pair, and
    a pair signalled once is never signalled again (new facts, the same answer)."""
    box = mailboxes(partners)
    anna, bram = valid_bsn(9201), valid_bsn(9202)
    await box["school"].register("S-1", bsn=anna)
    await box["school"].register("S-2", bsn=bram)
    await answer(box["brp"], anna, [PARENT])
    await answer(box["brp"], bram, [PARENT])
    # Same partner on both children: no family match.
    assert await box["school"].rest(0.5) == []
    await box["jgz"].register("G-1", bsn=bram)
    # G-1 pairs with S-1 (the other child, another partner), not with S-2 (same child).
    notice = await box["jgz"].notice("family.notice", "G-1")
    assert notice.body["counterpart"]["partner"] == "school"
    assert (await box["school"].notice("family.notice", "S-1")).body["relation"] == "parent"
    # With S-2 (the same child) it is an ordinary match.
    await box["school"].notice("match.notice", "S-2")
    await box["jgz"].notice("match.notice", "G-1")
    # Unasked facts, the same family: nothing is signalled twice.
    assert (await box["brp"].send(family_body(anna, [PARENT])))["status"] == "accepted"
    for pid in ("school", "jgz"):
        assert [m.type for m in await box[pid].rest(0.7)] == [], pid
    assert await db.fetchval("SELECT count(*) FROM family_match") == 1


async def test_archived_meldingen_and_replaced_facts_take_no_part(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    box = mailboxes(partners)
    anna, bram, cas = valid_bsn(9301), valid_bsn(9302), valid_bsn(9303)
    await box["school"].register("S-1", bsn=anna)
    assert (await box["school"].withdraw("S-1"))["status"] == "accepted"  # archived
    await box["jeugdteam"].register("T-1", bsn=bram)
    await box["jgz"].register("G-1", bsn=cas)
    await answer(box["brp"], bram, [PARENT])
    # cas had PARENT, then the register corrects it: the newer facts replace the old.
    await answer(box["brp"], cas, [OTHER_PARENT])
    assert (await box["brp"].send(family_body(anna, [PARENT])))["status"] == "accepted"
    for pid in ("school", "jeugdteam", "jgz"):
        assert [m.type for m in await box[pid].rest(0.7)] == [], pid
    assert await db.fetchval("SELECT count(*) FROM family_match") == 0


async def test_address_matches_only_where_the_region_opts_in(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    kids = [valid_bsn(9400 + i) for i in range(6)]
    for i, (pid, prefix) in enumerate([("school", "S"), ("jeugdteam", "T")] * 3):
        await box[pid].register(f"{prefix}-{i}", bsn=kids[i])
    # Default region: parents only, so a shared home is no family match.
    await answer(box["brp"], kids[0], [], HOME)
    await answer(box["brp"], kids[1], [], HOME)
    assert await box["school"].rest(0.5) == []

    await apply_region(
        test_region,
        region_document(
            test_region.user_prefix,
            family_match=["parent", "address"],
            excluded_addresses=["0363200000777777"],
        ),
    )
    # The matcher reads the applied region in every transaction.
    # New facts (a move within the family's home) now match on the address...
    assert (await box["brp"].send(family_body(kids[1], [], HOME)))["status"] == "accepted"
    got = await box["jeugdteam"].notice("family.notice", "T-1")
    assert got.body["relation"] == "address"
    assert (await box["school"].notice("family.notice", "S-0")).body["relation"] == "address"
    # ...but never on an institutional address, nor on one the region excludes.
    await answer(box["brp"], kids[2], [], SHELTER)
    body = family_body(kids[3], [], SHELTER, institutional=True, lookup_id="x")
    await lookup_for(box["brp"], kids[3])
    assert (await box["brp"].send(body))["status"] == "accepted"
    await answer(box["brp"], kids[4], [], "0363200000777777")
    await answer(box["brp"], kids[5], [], "0363200000777777")
    for pid in ("school", "jeugdteam"):
        assert [m.type for m in await box[pid].rest(0.7)] == [], pid
    assert await db.fetchval("SELECT count(*) FROM family_match") == 1


async def test_unknown_person_and_a_register_that_is_away(
    pipeline: System,
    test_region: RegionUnderTest,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    """Registrations, receipts and ordinary matches go on while the register answers
    nothing; the family match is made when its facts come, and an unanswered lookup
    is asked again once a day by the retention sweep, until the youth has no active
    melding."""
    box = mailboxes(partners)
    unknown = await box["brp"].send(family_body(valid_bsn(9501), [PARENT]))
    assert codes(unknown) == ["unknown_person"]
    anna, bram = valid_bsn(9502), valid_bsn(9503)
    await box["school"].register("S-1", bsn=anna)
    await box["jeugdteam"].register("T-1", bsn=anna)
    await box["school"].notice("match.notice", "S-1")
    await box["jeugdteam"].notice("match.notice", "T-1")
    await box["jgz"].register("G-1", bsn=bram)
    first = await lookup_for(box["brp"], anna)
    await lookup_for(box["brp"], bram)
    assert await box["brp"].rest(0.3) == []  # one lookup per youth, however many meldingen

    now = datetime.now(UTC)
    soon = await run_cli(
        test_region, "retention", "run", "--now", (now + timedelta(hours=20)).isoformat()
    )
    assert soon.exit_code == 0, soon.output
    assert await box["brp"].rest(0.5) == []  # not yet a day
    assert (await box["jgz"].withdraw("G-1", "unjustified"))["status"] == "accepted"
    later = await run_cli(
        test_region, "retention", "run", "--now", (now + timedelta(hours=25)).isoformat(), "--yes"
    )
    assert later.exit_code == 0, later.output
    again = await lookup_for(box["brp"], anna)
    assert again.body["lookup_id"] == first.body["lookup_id"]
    assert again.message_id != first.message_id
    # bram's youth is gone with its only melding, so nothing is asked on it again.
    assert await box["brp"].rest(0.5) == []
    assert await db.fetchval("SELECT count(*) FROM family_lookup") == 1

    # The register comes back; the family match forms with a sibling's melding.
    cas = valid_bsn(9504)
    await box["huisarts"].register("H-1", bsn=cas)
    await answer(box["brp"], cas, [PARENT])
    body = family_body(anna, [PARENT], lookup_id=first.body["lookup_id"])
    assert (await box["brp"].send(body))["status"] == "accepted"
    notice = await box["huisarts"].notice("family.notice", "H-1")
    assert notice.body["counterpart"]["partner"] in ("school", "jeugdteam")
    await box["huisarts"].notice("family.notice", "H-1")  # one per pair: two pairs
    await box["school"].notice("family.notice", "S-1")
    await box["jeugdteam"].notice("family.notice", "T-1")
    assert await db.fetchval("SELECT count(*) FROM family_lookup") == 0
