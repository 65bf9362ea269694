"""The front door through the running pipeline: who may speak, what is refused and
why, one receipt per message, replicas, the dedup window and the published schemas.

The rules themselves are unit-tested in depth (tests/unit/test_validation*.py); here a
representative message per error code travels the real broker and database.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aio_pika
import asyncpg
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from pamqp import encode

from cli.main import main as cli_main
from services.retention.sweep import Sweep
from shared.amqp.consuming import (
    DELIVERIES,
    ERROR_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    Delivery,
)
from shared.amqp.topology import ADMITTED_QUEUE, INGEST_QUEUE, REJECTED_QUEUE, parked_queue
from shared.contract.errors import ErrorCode
from shared.contract.inbound import INBOUND_TYPES
from shared.contract.outbound import OUTBOUND_TYPES, load_outbound
from shared.contract.validation import Valid, validate_inbound
from shared.db.inbox import DEDUP_WINDOW_DAYS
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient, Received
from shared.service import Runtime
from tests.conftest import System, apply_region
from tests.support import (
    RegionUnderTest,
    drain,
    eventually,
    ingest_of,
    queue_depth,
    region_document,
    register_body,
    valid_bsn,
)

REPO = Path(__file__).resolve().parents[2]
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


# --- helpers ------------------------------------------------------------------------


@dataclass
class Answers:
    """What arrived in one partner's mailbox, read as the contract tells a partner to:
    a message whose message_id was seen before is a duplicate delivery and dropped
    (the outbox may publish a row twice; both copies carry the same id)."""

    receipts: dict[str | None, list[Received]] = field(default_factory=lambda: defaultdict(list))
    others: list[Received] = field(default_factory=list)
    deliveries: Counter[str | None] = field(default_factory=Counter)

    def take(self, message: Received) -> None:
        self.deliveries[message.message_id] += 1
        if self.deliveries[message.message_id] > 1:
            return
        if message.type == "receipt":
            self.receipts[message.body["in_reply_to"]].append(message)
        else:
            self.others.append(message)

    def one(self, message_id: str | None) -> Received:
        got = self.receipts.get(message_id, [])
        assert len(got) == 1, f"{len(got)} receipts for {message_id!r}"
        return got[0]


async def collect_answers(
    client: PartnerClient,
    expected: Collection[str | None],
    *,
    timeout: float = 20.0,
    settle: float = 0.3,
) -> Answers:
    """Read the mailbox until every expected in_reply_to has had a receipt, then a
    little longer so that an extra receipt would be seen too."""
    needed = Counter(expected)
    answers = Answers()
    deadline = asyncio.get_running_loop().time() + timeout

    def missing() -> bool:
        return any(len(answers.receipts.get(k, [])) < n for k, n in needed.items())

    while missing():
        left = deadline - asyncio.get_running_loop().time()
        try:
            answers.take(await client.next(max(left, 0.001)))
        except TimeoutError:
            lacking = [k for k, n in needed.items() if len(answers.receipts.get(k, [])) < n]
            raise AssertionError(
                f"{client.partner_id}: no receipt for {len(lacking)} message(s), e.g. {lacking[:5]}"
            ) from None
    for message in await client.quiet(settle):
        answers.take(message)
    return answers


async def publish_raw(
    url: str,
    routing_key: str,
    body: bytes,
    **properties: Any,
) -> None:
    """Publish one message with exactly the given AMQP properties (what a partner's
    own client library might send), with publisher confirms."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("vi.inbound", ensure=False)
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, **properties),
            routing_key=routing_key,
        )
    finally:
        await connection.close()


def codes(receipt: Received) -> set[tuple[str, str]]:
    return {(e["loc"], e["code"]) for e in receipt.body["errors"]}


def amsterdam_today() -> datetime:
    return datetime.now(AMSTERDAM)


# --- 1. who is speaking ----------------------------------------------------------------


async def test_roles_decide_which_types_a_partner_may_send(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school, brp = partners["school"], partners["brp"]
    bsn = valid_bsn(7001)
    moved = {
        "type": "person.moved",
        "bsn": bsn,
        "municipality": "0599",
        "moved_at": "2026-01-01T10:00:00+01:00",
    }
    deceased = {"type": "person.deceased", "bsn": bsn, "died_on": "2026-01-01"}
    reporter_only = [
        register_body("B-1", bsn=bsn),
        {"type": "melding.withdraw", "melding_ref": "B-1", "reason": "risk_ended"},
        {"type": "regie.claim", "melding_ref": "B-1"},
        {"type": "melding.informed", "melding_ref": "B-1", "deferred_reason": "later"},
    ]
    refused = [await school.send(moved), await school.send(deceased)]
    refused_brp = [await brp.send(body) for body in reporter_only]
    # The right role gets past the front door: the matcher answers from the state.
    claim = await school.send({"type": "regie.claim", "melding_ref": "S-none"})
    move = await brp.send(moved)

    at_school = await collect_answers(school, [*refused, claim])
    at_brp = await collect_answers(brp, [*refused_brp, move])
    for mid in refused:
        receipt = at_school.one(mid)
        assert receipt.body["status"] == "rejected"
        assert codes(receipt) == {("type", "not_authorized")}
        assert receipt.correlation_id == mid
    for mid, body in zip(refused_brp, reporter_only, strict=True):
        receipt = at_brp.one(mid)
        assert codes(receipt) == {("type", "not_authorized")}, body["type"]
        assert receipt.body["melding_ref"] == "B-1"
    assert codes(at_school.one(claim)) == {("melding_ref", "unknown_melding")}
    assert codes(at_brp.one(move)) == {("bsn", "unknown_person")}
    assert await db.fetchval("SELECT count(*) FROM melding") == 0


async def test_a_partner_cannot_forge_the_runtime_headers(
    pipeline: System,
    partners: dict[str, PartnerClient],
    test_region: RegionUnderTest,
    db: asyncpg.Connection[Any],
) -> None:
    """Headers that the runtime uses on its own re-published copies (original user,
    routing key, attempt) mean nothing on a partner's message."""
    school, team = partners["school"], partners["jeugdteam"]
    forged = {
        USER_ID_HEADER: team.broker_user,
        ROUTING_KEY_HEADER: "person.deceased",
        "x-vi-attempt": 2,  # would make the message look like our own retry
    }
    body = json.dumps(register_body("F-1", bsn=valid_bsn(7002))).encode()
    for _ in range(2):  # the second publish re-uses the message_id
        await publish_raw(
            test_region.partner_url("school"),
            "melding.register",
            body,
            message_id="forged-1",
            user_id=school.broker_user,
            headers=forged,
        )
    answers = await collect_answers(school, ["forged-1", "forged-1"])
    statuses = sorted(r.body["status"] for r in answers.receipts["forged-1"])
    assert statuses == ["accepted", "duplicate"]  # a "retry" would have been silent
    assert await team.quiet(0.3) == []
    assert await db.fetchval("SELECT partner_id FROM melding") == "school"


async def test_a_forged_runtime_header_does_not_survive_into_the_kept_copy(
    pipeline: System, partners: dict[str, PartnerClient], test_region: RegionUnderTest
) -> None:
    """A message without user_id is kept whole in vi.rejected under the runtime's own
    login; a partner's forged x-vi-user-id on it must not come along, or a replay of
    the copy would be trusted as the forged partner's."""
    ingest = pipeline.runtimes[0]
    team = partners["jeugdteam"]
    forged = {
        USER_ID_HEADER: team.broker_user,
        ROUTING_KEY_HEADER: "person.deceased",
        "x-vi-attempt": 3,
        "x-vi-replayed": True,
    }
    body = json.dumps(register_body("F-2", bsn=valid_bsn(7004))).encode()
    await publish_raw(
        test_region.partner_url("school"),
        "melding.register",
        body,
        message_id="forged-2",
        headers=forged,
    )
    rejected: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def kept_in_rejected() -> bool:
        rejected.extend(await drain(ingest, REJECTED_QUEUE))
        return bool(rejected)

    await eventually(kept_in_rejected)
    [kept] = rejected
    assert kept.headers[USER_ID_HEADER] == ""  # no user_id: nobody, not the forged team
    assert kept.headers[ROUTING_KEY_HEADER] == "melding.register"
    assert "x-vi-attempt" not in kept.headers
    assert "x-vi-replayed" not in kept.headers
    assert "no user_id" in str(kept.headers[ERROR_HEADER])


async def test_a_partner_dropped_from_the_region_is_no_longer_heard(
    pipeline: System, partners: dict[str, PartnerClient], test_region: RegionUnderTest
) -> None:
    ingest = pipeline.runtimes[0]
    gp = partners["huisarts"]
    document = region_document(test_region.user_prefix)
    document["partner"] = [p for p in document["partner"] if p["id"] != "huisarts"]
    await apply_region(test_region, document)

    async def reloaded() -> bool:
        return "huisarts" not in (await ingest.region.get()).partners_by_id

    await eventually(reloaded)
    body = register_body("H-1", bsn=valid_bsn(7003))
    mid = await gp.send(body)
    rejected: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def parked_in_rejected() -> bool:
        rejected.extend(await drain(ingest, REJECTED_QUEUE))
        return bool(rejected)

    await eventually(parked_in_rejected)
    [kept] = rejected
    assert f"user_id {gp.broker_user!r} is not a partner" in str(kept.headers[ERROR_HEADER])
    assert kept.message_id == mid
    assert kept.body == json.dumps(body).encode()
    assert kept.headers[ROUTING_KEY_HEADER] == "melding.register"
    assert kept.headers[USER_ID_HEADER] == gp.broker_user
    assert await gp.quiet(0.3) == []  # unknown senders get no receipt


async def test_bytes_that_are_not_text_in_amqp_properties_do_not_stall_ingest(
    pipeline: System,
    partners: dict[str, PartnerClient],
    test_region: RegionUnderTest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Latin-1 message_id, routing key or header name, or a timestamp in
    microseconds, used to break the frame decoder and with it ingest's connection,
    over and over. Each is now an ordinary message with an ordinary answer."""
    # The services' connections installed shared.amqp.wire, which also lets this
    # process put bytes that are not UTF-8 into AMQP properties.
    school = partners["school"]
    url = test_region.partner_url("school")
    latin1_id = "bericht-\udce9"  # the single byte 0xE9 on the wire
    register = json.dumps(register_body("L-1", bsn=valid_bsn(7004))).encode()
    user = school.broker_user

    await publish_raw(url, "melding.register", register, message_id=latin1_id, user_id=user)
    await publish_raw(url, "melding.regist\udce9r", register, message_id="rk-1", user_id=user)
    await publish_raw(
        url,
        "melding.register",
        register,
        message_id="hdr-1",
        user_id=user,
        headers={"x-\udcff": "y"},
    )

    def microseconds(value: datetime) -> bytes:
        return int(value.timestamp() * 1_000_000).to_bytes(8, "big")

    monkeypatch.setitem(encode.METHODS, "timestamp", microseconds)
    register2 = json.dumps(register_body("L-2", bsn=valid_bsn(7005))).encode()
    await publish_raw(
        url,
        "melding.register",
        register2,
        message_id="ts-1",
        user_id=user,
        timestamp=datetime.now(UTC),
    )
    monkeypatch.undo()

    answers = await collect_answers(school, [None, "rk-1", "hdr-1", "ts-1"])
    assert codes(answers.one(None)) == {("message_id", "schema")}
    assert codes(answers.one("rk-1")) == {("type", "unknown_type")}
    assert answers.one("hdr-1").body["status"] == "accepted"
    assert answers.one("ts-1").body["status"] == "accepted"

    # Not from a partner at all, with a message_id that is not text: kept byte for byte.
    ingest = pipeline.runtimes[0]
    await ingest.publisher.publish(
        OutboundMessage(
            "vi.inbound",
            "melding.register",
            register,
            message_type=None,
            message_id=latin1_id,
            user_id=None,
        )
    )
    kept: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def rejected() -> bool:
        kept.extend(await drain(ingest, REJECTED_QUEUE))
        return bool(kept)

    await eventually(rejected)
    assert kept[0].message_id == latin1_id and kept[0].body == register
    assert "no user_id" in str(kept[0].headers[ERROR_HEADER])
    for queue in (INGEST_QUEUE, ADMITTED_QUEUE):
        assert await queue_depth(ingest, parked_queue(queue)) == (0, 0)


# --- 2. every front-door error through the pipeline -----------------------------------


@dataclass
class Case:
    name: str
    body: dict[str, Any] | bytes
    expect: set[tuple[str, str]]
    routing_key: str | None = None
    message_id: str | None = None  # None: a fresh id; "": none at all
    partner: str = "school"
    melding_ref: str | None = None


def _cases() -> Iterator[Case]:
    now = datetime.now(UTC)
    today = amsterdam_today().date()
    bsn = valid_bsn(7100)

    def reg(ref: str, **kw: Any) -> dict[str, Any]:
        kw.setdefault("bsn", bsn)
        return register_body(ref, **kw)

    yield Case(
        "invalid_json",
        b'{"type": "melding.register", "melding_ref": ',
        {("body", "invalid_json")},
        "melding.register",
    )
    yield Case(
        "not_utf8",
        b'{"type": "regie.claim", "melding_ref": "\xff"}',
        {("body", "invalid_json")},
        "regie.claim",
    )
    big = reg("E-big")
    big["reporter"]["name"] = "x" * 65_600
    yield Case("too_large", json.dumps(big).encode(), {("body", "too_large")}, "melding.register")
    yield Case(
        "missing_message_id",
        {"type": "regie.claim", "melding_ref": "E-mid"},
        {("message_id", "missing_message_id")},
        message_id="",
        partner="jgz",
        melding_ref="E-mid",
    )
    yield Case(
        "message_id_too_long",
        {"type": "regie.claim", "melding_ref": "E-long"},
        {("message_id", "schema")},
        message_id="m" * 129,
        partner="huisarts",
        melding_ref="E-long",
    )
    yield Case(
        "unknown_type",
        {"type": "melding.delete", "melding_ref": "E-ut"},
        {("type", "unknown_type")},
        melding_ref="E-ut",
    )
    wrong_type = reg("E-wt")
    wrong_type["youth"]["municipality"] = 363
    del wrong_type["reporter"]["email"]
    yield Case(
        "schema",
        wrong_type,
        {("youth.municipality", "schema"), ("reporter.email", "schema")},
        melding_ref="E-wt",
    )
    yield Case("no_identity", reg("E-ni", bsn=None), {("youth.bsn", "schema")}, melding_ref="E-ni")
    yield Case("bsn_checksum", reg("E-bc", bsn="123456789"), {("youth.bsn", "bsn_checksum")})
    too_old = (today - timedelta(days=25 * 366)).isoformat()
    yield Case("too_old", reg("E-to", birth_date=too_old), {("youth.birth_date", "too_old")})
    unborn = (today + timedelta(days=3)).isoformat()
    yield Case(
        "birth_date_future",
        reg("E-bf", birth_date=unborn),
        {("youth.birth_date", "birth_date_future")},
    )
    ahead = (now + timedelta(hours=1)).isoformat()
    yield Case(
        "reported_at_future",
        reg("E-rf", reported_at=ahead),
        {("reported_at", "reported_at_future")},
    )
    yield Case(
        "unknown_municipality",
        reg("E-um", municipality="9999"),
        {("youth.municipality", "unknown_municipality")},
    )
    mismatch = reg("E-tm")
    mismatch["type"] = "melding.withdraw"
    yield Case("type_routing_key_mismatch", mismatch, {("type", "schema")}, "melding.register")
    several = reg("E-sev", bsn="123456789", municipality="9999", reported_at=ahead)
    several["reporter"]["email"] = "j.devries@school.example\r\nBcc: all@example.org"
    several["reporter"]["name"] = "J.\r\nde Vries"
    several["colour"] = "red"
    yield Case(
        "several_errors",
        several,
        {
            ("youth.bsn", "bsn_checksum"),
            ("youth.municipality", "unknown_municipality"),
            ("reported_at", "reported_at_future"),
            ("reporter.email", "schema"),
            ("reporter.name", "schema"),
            ("colour", "schema"),
        },
        melding_ref="E-sev",
    )


async def test_each_front_door_error_comes_back_in_a_receipt(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    cases = list(_cases())
    sent: dict[str, tuple[Case, str | None]] = {}
    for case in cases:
        client = partners[case.partner]
        mid = await client.send(case.body, message_id=case.message_id, routing_key=case.routing_key)
        # A message without a usable id is answered with in_reply_to null.
        sent[case.name] = (case, mid if mid and len(mid) <= 128 else None)
    by_partner: dict[str, list[str | None]] = defaultdict(list)
    for case, mid in sent.values():
        by_partner[case.partner].append(mid)
    answers = {pid: await collect_answers(partners[pid], mids) for pid, mids in by_partner.items()}

    problems = []
    for name, (case, mid) in sent.items():
        receipt = answers[case.partner].one(mid)
        got = codes(receipt)
        if got != case.expect:
            problems.append(f"{name}: expected {sorted(case.expect)}, got {sorted(got)}")
        if receipt.body["status"] != "rejected" or receipt.correlation_id != mid:
            problems.append(
                f"{name}: {receipt.body['status']}, correlation {receipt.correlation_id}"
            )
        if case.melding_ref and receipt.body["melding_ref"] != case.melding_ref:
            problems.append(f"{name}: melding_ref {receipt.body['melding_ref']!r}")
        for error in receipt.body["errors"]:
            if not error["msg"]:
                problems.append(f"{name}: an error without msg")
    assert problems == []
    assert all(a.others == [] for a in answers.values())  # no notice for a rejection
    assert answers["jgz"].one(None).body["in_reply_to"] is None
    mismatch = answers["school"].one(sent["type_routing_key_mismatch"][1])
    assert "melding.register" in mismatch.body["errors"][0]["msg"]
    assert await db.fetchval("SELECT count(*) FROM melding") == 0
    assert await db.fetchval("SELECT count(*) FROM youth") == 0
    # Each answered message with an id is remembered, so a re-send is a duplicate.
    with_id = sum(1 for _, mid in sent.values() if mid is not None)
    assert await db.fetchval("SELECT count(*) FROM inbox") == with_id


async def test_youth_without_bsn_matches_on_surname_whatever_case_and_spacing(
    test_region: RegionUnderTest,
    pipeline: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    school, team, jgz = partners["school"], partners["jeugdteam"], partners["jgz"]
    common = {"birth_date": "2015-03-02", "sex": "F", "municipality": "0599"}
    first = await school.send(register_body("NB-1", surname="van den Bergh", **common))
    assert (await school.receipt_for(first)).body["status"] == "accepted"
    second = await team.send(
        register_body(
            "NB-2",
            surname="  VAN   DEN  bergh ",
            reporter="A. Jansen",
            email="a@jt.example",
            **common,
        )
    )
    at_team = await collect_answers(team, [second])
    assert at_team.one(second).body["status"] == "accepted"
    [notice] = at_team.others
    assert notice.body["type"] == "match.notice"
    assert [c["partner"] for c in notice.body["counterparts"]] == ["school"]
    to_school = await school.next()
    assert to_school.body["type"] == "match.notice"
    assert to_school.body["match_id"] == notice.body["match_id"]

    # The same surname and birth date with another sex is another youth.
    other = await jgz.send(register_body("NB-3", surname="van den Bergh", **{**common, "sex": "M"}))
    at_jgz = await collect_answers(jgz, [other], settle=0.5)
    assert at_jgz.one(other).body["status"] == "accepted"
    assert at_jgz.others == []
    assert await db.fetchval("SELECT count(*) FROM youth WHERE NOT has_bsn") == 2

    async def mails() -> bool:
        return len(list(test_region.mail_dir.glob("*.eml"))) >= 3

    await eventually(mails)
    for path in test_region.mail_dir.glob("*.eml"):
        text = path.read_text(encoding="utf-8").casefold()
        assert "bergh" not in text and "2015-03-02" not in text
    stored = await db.fetch("SELECT * FROM melding")
    assert not any("bergh" in str(dict(row)).casefold() for row in stored)


# --- 3. one receipt per message, after the outcome is durable ---------------------------


async def test_message_ids_are_scoped_per_partner_and_a_reuse_changes_nothing(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school, team = partners["school"], partners["jeugdteam"]
    await school.send(register_body("D-1", bsn=valid_bsn(7200)), message_id="same-id")
    await team.send(register_body("D-2", bsn=valid_bsn(7201)), message_id="same-id")
    first_school = (await collect_answers(school, ["same-id"])).one("same-id")
    first_team = (await collect_answers(team, ["same-id"])).one("same-id")
    assert first_school.body["status"] == first_team.body["status"] == "accepted"

    # Another body under a used id: answered `duplicate`, and nothing of it is done.
    await school.send(register_body("D-3", bsn=valid_bsn(7202)), message_id="same-id")
    again = (await collect_answers(school, ["same-id"], settle=0.5)).one("same-id")
    assert again.body["status"] == "duplicate"
    assert again.body["errors"] == []
    assert again.correlation_id == "same-id"
    assert again.message_id not in (first_school.message_id, None)
    refs = await db.fetch("SELECT melding_ref FROM melding ORDER BY melding_ref")
    assert [r["melding_ref"] for r in refs] == ["D-1", "D-2"]


async def test_ingest_dying_after_its_commit_answers_once(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """The crash falls after the outcome is durable but before the ack: the message
    comes back, and the partner still sees one answer (for a message without an id,
    the same receipt twice, with one message_id, which the partner drops)."""
    crashed: set[bytes] = set()

    async def setup(runtime: Runtime) -> None:
        real = ingest_of(runtime)

        async def dies_once_per_message(deliveries: Sequence[Delivery]) -> None:
            (delivery,) = deliveries
            await real([delivery])
            if delivery.message.body not in crashed:
                crashed.add(delivery.message.body)
                raise ConnectionResetError("lost before the ack")

        runtime.consume(INGEST_QUEUE, DELIVERIES, dies_once_per_message, batch_size=1)

    await system.start("ingest", setup=setup)
    await system.start("matcher")
    school = partners["school"]
    valid = await school.send(register_body("C-1", bsn=valid_bsn(7300)))
    invalid = await school.send(register_body("C-2", bsn="123456789"))
    await school.send({"type": "regie.claim", "melding_ref": "C-3"}, message_id="")

    answers = await collect_answers(school, [valid, invalid, None], settle=1.0)
    assert answers.one(valid).body["status"] == "accepted"
    assert codes(answers.one(invalid)) == {("youth.bsn", "bsn_checksum")}
    assert codes(answers.one(None)) == {("message_id", "missing_message_id")}
    # The retried no-id message was answered again, under the same receipt id.
    assert answers.deliveries[answers.one(None).message_id] >= 2
    assert len(crashed) == 3
    assert await db.fetchval("SELECT count(*) FROM melding") == 1


async def test_no_receipt_while_the_outcome_cannot_be_stored(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """A rejection is answered only once it is stored: when the database refuses the
    inbox row, the partner hears nothing and the message is parked whole (where ingest
    handles it: the first pass moved it to vi.ingest.admitted, in a pack it leaves
    alone when it fails alone)."""
    await db.execute(
        """CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.message_id = 'doomed-1' THEN RAISE EXCEPTION 'disk full'; END IF;
             RETURN NEW;
           END $$;
           CREATE TRIGGER refuse_doomed BEFORE INSERT ON inbox
             FOR EACH ROW EXECUTE FUNCTION refuse_doomed();"""
    )
    school = partners["school"]
    body = register_body("P-1", bsn="123456789")
    await school.send(body, message_id="doomed-1")
    ingest = pipeline.runtimes[0]
    parked: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def is_parked() -> bool:
        parked.extend(await drain(ingest, parked_queue(ADMITTED_QUEUE)))
        return bool(parked)

    await eventually(is_parked)
    [kept] = parked
    assert kept.message_id == "doomed-1" and kept.body == json.dumps(body).encode()
    assert "disk full" in str(kept.headers[ERROR_HEADER])
    assert await school.quiet(0.5) == []
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0
    # The front door is not blocked by it.
    mid = await school.send(register_body("P-2", bsn="123456789"))
    assert codes(await school.receipt_for(mid)) == {("youth.bsn", "bsn_checksum")}


async def test_the_dedup_window_is_kept_then_purged_by_retention(
    pipeline: System,
    partners: dict[str, PartnerClient],
    test_region: RegionUnderTest,
    db: asyncpg.Connection[Any],
) -> None:
    assert DEDUP_WINDOW_DAYS >= 30
    docs = (REPO / "docs" / "partners.md").read_text(encoding="utf-8")
    assert f"{DEDUP_WINDOW_DAYS} days" in docs

    runtime = pipeline.runtimes[0]
    sweep = Sweep(runtime.pool, runtime.outbox, test_region.region, runtime.pseudonyms)
    school = partners["school"]
    invalid = register_body("W-1", bsn="123456789")  # fails the 11-proef: ingest answers
    await school.send(invalid, message_id="window-1")
    first = await school.receipt_for("window-1")
    assert first.body["status"] == "rejected"
    # The receipt's id is the one its inbox row was given.
    assert str(await db.fetchval("SELECT receipt_id FROM inbox")) == first.message_id

    # The window runs by the database's clock (a sweep as of another time changes
    # nothing about it), so the row is made older instead.
    async def received(ago: timedelta) -> None:
        await db.execute("UPDATE inbox SET received_at = now() - $1::interval", ago)
        await db.execute("UPDATE arrival_answered SET answered_at = now() - $1::interval", ago)

    await received(timedelta(days=DEDUP_WINDOW_DAYS - 1))
    await sweep.run(datetime.now(UTC))
    assert await db.fetchval("SELECT count(*) FROM inbox") == 1
    await school.send(register_body("W-1", bsn=valid_bsn(61)), message_id="window-1")
    duplicate = await school.receipt_for("window-1")
    assert duplicate.body["status"] == "duplicate"
    assert duplicate.message_id not in {first.message_id, None}

    await received(timedelta(days=DEDUP_WINDOW_DAYS, hours=1))
    report = await sweep.run(datetime.now(UTC))
    assert report.counts.get("inbox_expired") == 1
    assert report.counts.get("arrival_answer_expired") == 2  # both publishes of window-1
    assert await db.fetchval("SELECT count(*) FROM arrival_answered") == 0
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0
    # Past the window the id is new again and the message is judged afresh (here by
    # the matcher). It is a new answer, so a partner that drops receipt ids it has
    # seen must not drop it: its id is new.
    await school.send(register_body("W-1", bsn=valid_bsn(61)), message_id="window-1")
    accepted = await school.receipt_for("window-1")
    assert accepted.body["status"] == "accepted"
    assert accepted.message_id not in {first.message_id, duplicate.message_id, None}

    # The same again for a message the matcher answered: purged, re-sent, a new id.
    await received(timedelta(days=DEDUP_WINDOW_DAYS, hours=1))
    await sweep.run(datetime.now(UTC))
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0
    await school.send(register_body("W-2", bsn=valid_bsn(62)), message_id="window-1")
    again = await school.receipt_for("window-1")
    assert again.body["status"] == "accepted"
    assert again.message_id not in {first.message_id, duplicate.message_id, accepted.message_id}


async def test_a_message_without_id_gets_a_new_receipt_id_when_the_answer_changes(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    """No message_id to remember it by: the same message answered the same way repeats
    its receipt (and id), which the partner drops as a copy; a different answer to the
    same message gets an id of its own, or the partner would drop a real answer."""
    clock = [datetime.now(UTC)]

    async def setup(runtime: Runtime) -> None:
        runtime.consume(
            INGEST_QUEUE, DELIVERIES, ingest_of(runtime, clock=lambda: clock[0]), batch_size=1
        )

    await system.start("ingest", setup=setup)
    school = partners["school"]
    ahead = (clock[0] + timedelta(minutes=20)).isoformat()
    body = register_body("N-1", bsn=valid_bsn(63), reported_at=ahead)
    await school.send(body, message_id="")
    first = await school.receipt_for(None)
    assert codes(first) == {
        ("message_id", "missing_message_id"),
        ("reported_at", "reported_at_future"),
    }
    await school.send(body, message_id="")
    assert (await school.receipt_for(None)).message_id == first.message_id

    clock[0] += timedelta(minutes=30)  # reported_at no longer lies ahead
    await school.send(body, message_id="")
    later = await school.receipt_for(None)
    assert codes(later) == {("message_id", "missing_message_id")}
    assert later.message_id not in {first.message_id, None}


# --- 5. replicas ------------------------------------------------------------------------


async def test_two_ingest_replicas_share_the_queue_and_answer_each_message_once(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    handled: Counter[str] = Counter()

    def counting(replica: str) -> Any:
        async def setup(runtime: Runtime) -> None:
            real = ingest_of(runtime)

            async def handler(deliveries: Sequence[Delivery]) -> None:
                (delivery,) = deliveries
                await real([delivery])
                handled[replica] += 1

            runtime.consume(INGEST_QUEUE, DELIVERIES, handler, prefetch=8, batch_size=1)

        return setup

    ingest_a = await system.start("ingest", setup=counting("a"))
    await system.start("ingest", setup=counting("b"))
    await system.start("matcher")
    await system.start("notifier")
    assert (await queue_depth(ingest_a, INGEST_QUEUE))[1] == 2

    school, team = partners["school"], partners["jeugdteam"]
    valid = await asyncio.gather(
        *(school.send(register_body(f"RA-{i}", bsn=valid_bsn(8000 + i))) for i in range(150))
    )
    invalid = await asyncio.gather(
        *(team.send(register_body(f"RB-{i}", bsn="123456789")) for i in range(150))
    )
    at_school = await collect_answers(school, valid, timeout=60)
    at_team = await collect_answers(team, invalid, timeout=60)
    assert all(at_school.one(mid).body["status"] == "accepted" for mid in valid)
    assert all(at_team.one(mid).body["status"] == "rejected" for mid in invalid)
    assert handled["a"] > 0 and handled["b"] > 0
    assert handled["a"] + handled["b"] == 300

    # Whichever replica takes a re-sent id, the shared inbox knows it.
    for mid in [*valid[:20], *invalid[:20]]:
        client = school if mid in valid else team
        await client.send({"type": "regie.claim", "melding_ref": "RA-0"}, message_id=mid)
    again_school = await collect_answers(school, valid[:20])
    again_team = await collect_answers(team, invalid[:20])
    assert all(again_school.one(mid).body["status"] == "duplicate" for mid in valid[:20])
    assert all(again_team.one(mid).body["status"] == "duplicate" for mid in invalid[:20])
    assert await queue_depth(ingest_a, INGEST_QUEUE) == (0, 2)


# --- 6. the published schemas -----------------------------------------------------------


CONTRACT_EXAMPLES: list[dict[str, Any]] = [
    register_body("R-2026-0001", bsn="111222333", reported_at="2026-11-28T10:00:00+01:00"),
    register_body(
        "R-2026-0002", surname="Jansen", sex="X", reported_at="2026-11-28T10:00:00+01:00"
    ),
    {"type": "melding.withdraw", "melding_ref": "R-2026-0001", "reason": "risk_ended"},
    {"type": "regie.claim", "melding_ref": "R-2026-0001"},
    {
        "type": "regie.assign",
        "match_id": "5b0f1c9e-7a43-4d2e-9a51-0c1f3e8d2b77",
        "partner": "jt-noord",
    },
    {
        "type": "melding.informed",
        "melding_ref": "R-2026-0001",
        "informed": ["parents"],
        "informed_on": "2026-11-30",
    },
    {"type": "melding.informed", "melding_ref": "R-2026-0001", "deferred_reason": "Na overleg."},
    {
        "type": "person.moved",
        "bsn": "111222333",
        "municipality": "0599",
        "moved_at": "2026-11-28T10:00:00+01:00",
    },
    {"type": "person.deceased", "bsn": "111222333", "died_on": "2026-11-01"},
    {
        "type": "receipt",
        "in_reply_to": "m-1",
        "status": "accepted",
        "melding_ref": "R-2026-0001",
        "errors": [],
        "inform": ["youth", "parents"],
    },
]


def test_schema_export_writes_a_json_schema_per_message(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    result = CliRunner().invoke(cli_main, ["schema", "export", str(target)])
    assert result.exit_code == 0, result.output
    all_types = {**INBOUND_TYPES, **OUTBOUND_TYPES}
    schemas: dict[str, dict[str, Any]] = {}
    for message_type in all_types:
        path = target / f"{message_type}.schema.json"
        assert str(path) in result.output
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        type_field = schema["properties"]["type"]
        assert type_field.get("const") == message_type or type_field.get("enum") == [message_type]
        assert "type" in schema.get("required", []) or "default" in type_field
        schemas[message_type] = schema
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    assert {m["type"] for m in index["messages"]} == set(all_types)

    for example in CONTRACT_EXAMPLES:
        errors = list(Draft202012Validator(schemas[example["type"]]).iter_errors(example))
        assert errors == [], (example["type"], [e.message for e in errors])
    no_identity = register_body("R-1", reported_at="2026-11-28T10:00:00+01:00")
    assert not Draft202012Validator(schemas["melding.register"]).is_valid(no_identity)
    both = {**CONTRACT_EXAMPLES[5], "deferred_reason": "x"}
    assert not Draft202012Validator(schemas["melding.informed"]).is_valid(both)


def test_partner_docs_cover_every_message_type_and_error_code() -> None:
    docs = (REPO / "docs" / "partners.md").read_text(encoding="utf-8")
    for message_type in [*INBOUND_TYPES, *OUTBOUND_TYPES]:
        assert f'{{"type": "{message_type}"' in docs, f"no example of {message_type}"
    for code in ErrorCode:
        assert f"| `{code.value}` |" in docs, f"error code {code.value} not explained"
    assert "^vi\\.inbound$" in docs and "^partner\\.<id>$" in docs

    # Every complete example in the guide is a message the index accepts or sends.
    examples = []
    for block in re.findall(r"```json\n(.*?)```", docs, flags=re.DOTALL):
        try:
            examples.append(json.loads(block))
        except ValueError:
            continue  # a fragment, such as the "youth" object alone
    assert len(examples) >= len(INBOUND_TYPES) + len(OUTBOUND_TYPES)
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for example in examples:
        if example["type"] in OUTBOUND_TYPES:
            load_outbound(json.dumps(example).encode())
            continue
        outcome = validate_inbound(
            example["type"],
            json.dumps(example).encode(),
            roles=frozenset({"reporter", "population_register", "coordinator"}),
            municipalities={"0363", "0599"},
            now=now,
        )
        assert isinstance(outcome, Valid), (example, outcome)
