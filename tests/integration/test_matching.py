"""Matching through the running pipeline: one active melding per partner per youth,
match groups with a stable match_id, who hears what, the archive's single signal,
youths without a BSN, and the audit log."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient, Received
from tests.conftest import System
from tests.support import RegionUnderTest, eventually, register_body, valid_bsn


class Mailbox:
    """A partner's mailbox read in any order: what a test is not looking for yet is kept."""

    def __init__(self, client: PartnerClient) -> None:
        self.client = client
        self.kept: list[Received] = []
        self.everything: list[Received] = []  # all that arrived, taken or not

    async def get(self, want: Callable[[Received], bool], timeout: float = 10.0) -> Received:
        """The first message `want`s; safe to call from several tasks at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, got in enumerate(self.kept):
                if want(got):
                    return self.kept.pop(i)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.client.partner_id}: expected message not received")
            try:
                got = await self.client.next(min(remaining, 0.05))
            except TimeoutError:
                continue
            self.kept.append(got)
            self.everything.append(got)

    async def receipt(self, message_id: str | None) -> dict[str, Any]:
        got = await self.get(lambda m: m.type == "receipt" and m.body["in_reply_to"] == message_id)
        return got.body

    async def notice(self, type_: str, melding_ref: str | None = None) -> Received:
        return await self.get(
            lambda m: (
                m.type == type_ and (melding_ref is None or m.body["melding_ref"] == melding_ref)
            )
        )

    async def rest(self, seconds: float = 0.5) -> list[Received]:
        """Everything not yet taken, after waiting `seconds` for stragglers."""
        late = await self.client.quiet(seconds)
        self.everything.extend(late)
        extra = self.kept + late
        self.kept = []
        return extra

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send and return the receipt."""
        return await self.receipt(await self.client.send(body))

    async def register(self, ref: str, **kwargs: Any) -> dict[str, Any]:
        partner = self.client.partner_id
        kwargs.setdefault("reporter", f"Contact {partner}")
        kwargs.setdefault("email", f"contact@{partner}.example")
        return await self.send(register_body(ref, **kwargs))

    async def withdraw(self, ref: str, reason: str = "risk_ended") -> dict[str, Any]:
        return await self.send({"type": "melding.withdraw", "melding_ref": ref, "reason": reason})

    async def claim(self, ref: str) -> dict[str, Any]:
        return await self.send({"type": "regie.claim", "melding_ref": ref})


def mailboxes(partners: dict[str, PartnerClient]) -> dict[str, Mailbox]:
    return {pid: Mailbox(client) for pid, client in partners.items()}


def codes(receipt: dict[str, Any]) -> list[str]:
    return [e["code"] for e in receipt["errors"]]


def counterpart_partners(notice: Received) -> list[str]:
    return [c["partner"] for c in notice.body["counterparts"]]


async def test_a_third_partner_joins_the_same_match_and_each_hears_the_right_things(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(101)
    assert (await box["school"].register("S-1", bsn=bsn))["status"] == "accepted"
    assert (await box["jeugdteam"].register("T-1", bsn=bsn))["status"] == "accepted"
    team_notice = await box["jeugdteam"].notice("match.notice", "T-1")
    school_notice = await box["school"].notice("match.notice", "S-1")
    match_id = team_notice.body["match_id"]
    assert school_notice.body["match_id"] == match_id
    assert counterpart_partners(team_notice) == ["school"]
    assert counterpart_partners(school_notice) == ["jeugdteam"]
    assert team_notice.body["lead"] is None

    assert (await box["jgz"].register("G-1", bsn=bsn))["status"] == "accepted"
    newcomer = await box["jgz"].notice("match.notice", "G-1")
    # The newcomer hears of all counterparts, earliest first; each earlier partner
    # hears only of the newcomer; the group keeps its match_id.
    assert newcomer.body["match_id"] == match_id
    assert counterpart_partners(newcomer) == ["school", "jeugdteam"]
    [school_c, team_c] = newcomer.body["counterparts"]
    assert school_c["organisation"] == "Basisschool De Regenboog"
    assert school_c["sector"] == "onderwijs"
    assert school_c["reporter"] == {
        "name": "Contact school",
        "email": "contact@school.example",
        "phone": "+31201234567",
    }
    assert school_c["archived"] is False and team_c["archived"] is False
    for pid, ref in (("school", "S-1"), ("jeugdteam", "T-1")):
        told = await box[pid].notice("match.notice", ref)
        assert told.body["match_id"] == match_id
        assert counterpart_partners(told) == ["jgz"]
    # Nothing more for anyone: exactly one notice per partner per event.
    for pid in ("school", "jeugdteam", "jgz", "huisarts"):
        assert await box[pid].rest(0.3) == [], pid
    assert await db.fetchval("SELECT count(*) FROM match_group") == 1
    assert await db.fetchval("SELECT count(*) FROM match_member") == 3


async def test_group_ends_below_two_active_and_a_later_match_is_a_new_group(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(102)
    await box["school"].register("S-1", bsn=bsn)
    await box["jeugdteam"].register("T-1", bsn=bsn)
    first = (await box["school"].notice("match.notice", "S-1")).body["match_id"]
    await box["jeugdteam"].notice("match.notice", "T-1")

    assert (await box["jeugdteam"].withdraw("T-1"))["status"] == "accepted"
    assert await db.fetchval("SELECT ended_at IS NOT NULL FROM match_group") is True

    await box["jgz"].register("G-1", bsn=bsn)
    newcomer = await box["jgz"].notice("match.notice", "G-1")
    second = newcomer.body["match_id"]
    assert second != first
    # The withdrawn (archived) melding signals once, marked archived; its partner hears.
    by_partner = {c["partner"]: c for c in newcomer.body["counterparts"]}
    assert by_partner["school"]["archived"] is False
    assert by_partner["jeugdteam"]["archived"] is True
    assert (await box["jeugdteam"].notice("match.notice", "T-1")).body["match_id"] == second
    assert (await box["school"].notice("match.notice", "S-1")).body["match_id"] == second

    # A fourth partner joins the live group; the archive has had its one signal.
    await box["huisarts"].register("H-1", bsn=bsn)
    fourth = await box["huisarts"].notice("match.notice", "H-1")
    assert fourth.body["match_id"] == second
    assert counterpart_partners(fourth) == ["school", "jgz"]
    assert (await box["school"].notice("match.notice", "S-1")).body["match_id"] == second
    assert (await box["jgz"].notice("match.notice", "G-1")).body["match_id"] == second
    assert await box["jeugdteam"].rest(0.3) == []
    assert await db.fetchval("SELECT count(*) FROM match_group WHERE ended_at IS NULL") == 1
    assert await db.fetchval("SELECT count(*) FROM match_group") == 2


async def test_one_active_melding_per_partner_per_youth_and_refs_are_never_reused(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school = Mailbox(partners["school"])
    x, y = valid_bsn(103), valid_bsn(104)
    assert (await school.register("S-1", bsn=x))["status"] == "accepted"

    again = await school.register("S-2", bsn=x)
    assert again["status"] == "rejected" and codes(again) == ["already_registered"]
    [error] = again["errors"]
    assert "S-1" in error["msg"]
    assert x not in error["msg"]

    reused = await school.register("S-1", bsn=y)
    assert reused["status"] == "rejected" and codes(reused) == ["duplicate_ref"]
    assert reused["errors"][0]["loc"] == "melding_ref"
    # Both apply: both are reported.
    both = await school.register("S-1", bsn=x)
    assert sorted(codes(both)) == ["already_registered", "duplicate_ref"]
    # Nothing was stored for the rejected ones (no youth row for y either).
    assert await db.fetchval("SELECT count(*) FROM melding") == 1
    assert await db.fetchval("SELECT count(*) FROM youth") == 1

    # After a withdraw the partner may register on the youth again, with a new ref.
    assert (await school.withdraw("S-1"))["status"] == "accepted"
    assert (await school.register("S-3", bsn=x))["status"] == "accepted"
    assert codes(await school.register("S-1", bsn=valid_bsn(109))) == ["duplicate_ref"]
    # A ref of another partner is no concern of this one.
    assert (await Mailbox(partners["jgz"]).register("S-1", bsn=y))["status"] == "accepted"
    assert await school.rest(0.3) == []


async def test_two_meldingen_of_one_partner_are_no_match(
    pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    school = Mailbox(partners["school"])
    bsn = valid_bsn(105)
    await school.register("S-1", bsn=bsn)
    await school.withdraw("S-1")
    await school.register("S-2", bsn=bsn)  # its own archive is not a counterpart
    assert await school.rest(0.5) == []


async def test_an_archived_melding_signals_exactly_once(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(106)
    await box["school"].register("S-1", bsn=bsn, email="old@school.example")
    await box["school"].withdraw("S-1", "risk_ended")  # archived, never matched

    await box["jgz"].register("G-1", bsn=bsn)
    notice = await box["jgz"].notice("match.notice", "G-1")
    [archived] = notice.body["counterparts"]
    assert archived["partner"] == "school" and archived["archived"] is True
    school_notice = await box["school"].notice("match.notice", "S-1")
    assert counterpart_partners(school_notice) == ["jgz"]
    # ... and the archived melding's reporter gets the match e-mail too.
    mails = test_region.mail_dir

    async def three_mails() -> bool:
        return len(list(mails.glob("*.eml"))) >= 3

    await eventually(three_mails)
    recipients = sorted(
        re.search(r"^To: (.*)$", p.read_text(), re.M).group(1)  # type: ignore[union-attr]
        for p in mails.glob("*.eml")
    )
    assert recipients == ["contact@jgz.example", "old@school.example", "regie@amsterdam.example"]
    # A match on an archived melding alone is not a live group: no lead to claim.
    claim = await box["jgz"].claim("G-1")
    assert codes(claim) == ["no_match"]

    await box["huisarts"].register("H-1", bsn=bsn)
    later = await box["huisarts"].notice("match.notice", "H-1")
    assert counterpart_partners(later) == ["jgz"]
    await box["jgz"].notice("match.notice", "G-1")
    assert await box["school"].rest(0.5) == []  # never again
    assert await db.fetchval("SELECT archive_signalled FROM melding WHERE melding_ref = 'S-1'")


async def test_a_youth_without_bsn_is_matched_on_normalised_surname_birth_date_and_sex(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    box = mailboxes(partners)
    youth = {"birth_date": "2012-03-04", "sex": "F"}
    await box["school"].register("S-1", surname="  van  der Berg ", **youth)
    # Case and spacing do not matter; the municipality is not part of the identity.
    await box["jeugdteam"].register("T-1", surname="VAN DER BERG", municipality="0599", **youth)
    notice = await box["jeugdteam"].notice("match.notice", "T-1")
    assert counterpart_partners(notice) == ["school"]
    await box["school"].notice("match.notice", "S-1")

    # Accents are kept, and sex and birth date count: these are other youths.
    await box["jgz"].register("G-1", surname="van der Bérg", **youth)
    await box["huisarts"].register("H-1", surname="van der Berg", birth_date="2012-03-04", sex="M")
    await box["huisarts"].register("H-2", surname="van der Berg", birth_date="2012-03-05", sex="F")
    # With a BSN the BSN alone identifies the youth; the surname is ignored.
    await box["huisarts"].register("H-3", bsn=valid_bsn(107), surname="van der Berg", **youth)
    for pid in ("school", "jeugdteam", "jgz", "huisarts"):
        assert [m.type for m in await box[pid].rest(0.4)] == [], pid
    assert await db.fetchval("SELECT count(*) FROM youth") == 5
    assert await db.fetchval("SELECT count(*) FROM youth WHERE has_bsn") == 1


async def test_audit_log_records_who_registered_withdrew_was_signalled_and_led(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    box = mailboxes(partners)
    bsn = valid_bsn(108)
    await box["school"].register("S-1", bsn=bsn)
    await box["jeugdteam"].register("T-1", bsn=bsn)
    await box["jgz"].register("G-1", bsn=bsn)
    assert (await box["jgz"].claim("G-1"))["status"] == "accepted"
    assert (await box["school"].withdraw("S-1", "unjustified"))["status"] == "accepted"

    rows = await db.fetch(
        "SELECT action, actor, melding_ref, youth_ref, match_id, detail FROM audit_log ORDER BY id"
    )
    events = [(r["action"], r["actor"], r["melding_ref"]) for r in rows]
    assert events[:3] == [
        ("registered", "school", "S-1"),
        ("registered", "jeugdteam", "T-1"),
        ("signalled", "jeugdteam", "T-1"),
    ]
    assert ("signalled", "school", "S-1") in events
    assert sum(1 for e in events if e[0] == "signalled") == 5  # 2 for the match, 3 on joining
    assert ("lead_claimed", "jgz", "G-1") in events
    # The withdraw: who, which melding, why (unjustified: purged at once).
    [ended] = [r for r in rows if r["melding_ref"] == "S-1" and r["action"] == "purged"]
    assert ended["actor"] == "school"
    assert ended["detail"]["reason"] == "unjustified"

    # The youth appears only as a one-way audit pseudonym, the same on every row, that
    # is neither the BSN nor the stored identity hash.
    youth_refs = {r["youth_ref"] for r in rows}
    assert len(youth_refs) == 1
    [youth_ref] = youth_refs
    identity_hash = bytes(await db.fetchval("SELECT identity_hash FROM youth"))
    assert re.fullmatch(r"[0-9a-f]{24}", youth_ref)
    assert youth_ref not in identity_hash.hex() and bsn not in youth_ref
    match_ids = {r["match_id"] for r in rows if r["action"] in ("signalled", "lead_claimed")}
    assert len(match_ids) == 1
    for row in rows:
        assert bsn not in str(dict(row))
        assert "2014-05-01" not in str(dict(row))
