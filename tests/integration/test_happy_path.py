"""The spine end to end: two partners, one youth, a match, e-mails."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg

from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import RegionUnderTest, eventually, register_body, valid_bsn


async def test_two_partners_on_one_youth_are_matched_and_told(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    school, team = partners["school"], partners["jeugdteam"]
    bsn = valid_bsn(1234567)

    first = await school.send(register_body("S-1", bsn=bsn))
    receipt = await school.receipt_for(first)
    assert receipt.body["status"] == "accepted", receipt.body
    assert receipt.body["melding_ref"] == "S-1"
    assert receipt.body["inform"] == ["youth", "parents"]
    assert receipt.correlation_id == first

    second = await team.send(
        register_body("T-9", bsn=bsn, reporter="A. Jansen", email="a.jansen@jt.example")
    )
    got = await team.collect(2)
    by_type = {m.body["type"]: m for m in got}
    assert by_type["receipt"].body["status"] == "accepted"
    assert by_type["receipt"].body["in_reply_to"] == second
    notice_for_team = by_type["match.notice"].body
    assert notice_for_team["melding_ref"] == "T-9"
    [counterpart] = notice_for_team["counterparts"]
    assert counterpart["partner"] == "school"
    assert counterpart["organisation"] == "Basisschool De Regenboog"
    assert counterpart["reporter"]["email"] == "j.devries@school.example"
    assert counterpart["archived"] is False

    notice_for_school = (await school.next()).body
    assert notice_for_school["type"] == "match.notice"
    assert notice_for_school["melding_ref"] == "S-1"
    assert notice_for_school["match_id"] == notice_for_team["match_id"]
    assert [c["partner"] for c in notice_for_school["counterparts"]] == ["jeugdteam"]

    async def three_mails() -> bool:
        return len(list(test_region.mail_dir.glob("*.eml"))) >= 3

    await eventually(three_mails)
    mails = [
        message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in test_region.mail_dir.glob("*.eml")
    ]
    assert all(isinstance(m, EmailMessage) for m in mails)
    recipients = sorted(str(m["To"]) for m in mails)
    assert recipients == [
        "a.jansen@jt.example",
        "j.devries@school.example",
        "regie@amsterdam.example",
    ]
    for mail in mails:
        text = mail.get_content()
        assert notice_for_team["match_id"] in text
        assert bsn not in text and "2014" not in text
        assert mail["Message-ID"].endswith("@verwijsindex.invalid>")
    to_school = next(m for m in mails if m["To"] == "j.devries@school.example")
    assert "S-1" in to_school.get_content() and "a.jansen@jt.example" in to_school.get_content()

    assert await db.fetchval("SELECT count(*) FROM match_group") == 1
    stored = await db.fetch("SELECT * FROM youth")
    assert len(stored) == 1 and bsn.encode() not in bytes(stored[0]["identity_hash"])
