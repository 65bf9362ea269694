"""Live and bulk lanes on the real broker and database: onboarding loads (contract §10)
are handled like live messages but after them, and a partner flooding live traffic
does not hold up the others."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg
from prometheus_client import REGISTRY

from services.ingest.lanes import FirstPass
from services.ingest.quota import PartnerQuotas
from shared.amqp.consuming import ATTEMPT_HEADER, ERROR_HEADER, Delivery
from shared.amqp.topology import (
    ADMITTED_QUEUE,
    INBOUND_EXCHANGE,
    INGEST_QUEUE,
    MATCHER_QUEUE,
    bulk,
    parked_queue,
)
from shared.contract.inbound import ONBOARDING_ROUTING_KEY
from shared.lanes import WATCHED_LIVE_QUEUES, Lane, LiveFirst
from shared.partner_client import PartnerClient, Received
from shared.service import Runtime
from tests.conftest import System, apply_region
from tests.support import (
    RegionUnderTest,
    drain,
    eventually,
    mails,
    no_consumers,
    queued_messages,
    region_document,
    register_body,
    valid_bsn,
)


async def _publish_many(
    client: PartnerClient, bodies: list[dict[str, Any]], *, routing_key: str | None = None
) -> None:
    for start in range(0, len(bodies), 200):
        await asyncio.gather(
            *(client.send(b, routing_key=routing_key) for b in bodies[start : start + 200])
        )


def _diverted(partner: str) -> float:
    labels = {"service": "ingest", "partner": partner}
    return REGISTRY.get_sample_value("vi_lane_diverted_total", labels) or 0.0


async def _distinct(client: PartnerClient, count: int, timeout: float) -> list[Received]:
    """The next `count` messages with distinct message_ids: the outbox may deliver a
    message twice when a busy machine makes its fast path slower than the relay's
    grace period, and partners drop the copies by message_id (contract)."""
    seen: dict[str | None, Received] = {}
    while len(seen) < count:
        got = await client.next(timeout)
        seen.setdefault(got.message_id, got)
    return list(seen.values())


def _new(got: list[Received], known: list[Received]) -> list[Received]:
    """What in `got` is no copy of a message in `known`."""
    ids = {k.message_id for k in known}
    return [g for g in got if g.message_id not in ids]


async def _claimed(db: asyncpg.Connection[Any], partner: str) -> int:
    """Messages of `partner` answered so far (the inbox holds one row for each)."""
    count = await db.fetchval("SELECT count(*) FROM inbox WHERE partner_id = $1", partner)
    assert isinstance(count, int)
    return count


async def _count_meldingen(db: asyncpg.Connection[Any], partner: str) -> int:
    count = await db.fetchval("SELECT count(*) FROM melding WHERE partner_id = $1", partner)
    assert isinstance(count, int)
    return count


async def test_onboarding_meldingen_get_the_receipts_matches_and_emails_of_live_ones(
    test_region: RegionUnderTest, pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    school, team = partners["school"], partners["jeugdteam"]
    bsn = valid_bsn(4_400_001)
    first = await school.send(register_body("S-ON-1", bsn=bsn), routing_key=ONBOARDING_ROUTING_KEY)
    receipt = await school.receipt_for(first)
    assert receipt.body["status"] == "accepted"
    assert receipt.body["inform"] == ["youth", "parents"]

    second = await team.send(
        register_body("T-ON-1", bsn=bsn, reporter="A. Jansen", email="a.jansen@jt.example"),
        routing_key=ONBOARDING_ROUTING_KEY,
    )
    by_type = {m.body["type"]: m.body for m in await team.collect(2)}
    assert by_type["receipt"]["in_reply_to"] == second
    assert by_type["receipt"]["status"] == "accepted"
    assert by_type["match.notice"]["melding_ref"] == "T-ON-1"
    assert [c["partner"] for c in by_type["match.notice"]["counterparts"]] == ["school"]
    school_notice = (await school.next()).body
    assert school_notice["type"] == "match.notice"
    assert school_notice["match_id"] == by_type["match.notice"]["match_id"]

    async def three_mails() -> bool:
        return len(mails(test_region)) >= 3

    await eventually(three_mails)
    assert len(mails(test_region)) == 3

    # Validated as melding.register, with the same error codes.
    bad = await school.send(
        register_body("S-ON-2", bsn="123456789"), routing_key=ONBOARDING_ROUTING_KEY
    )
    rejected = await school.receipt_for(bad)
    assert rejected.body["status"] == "rejected"
    assert [e["code"] for e in rejected.body["errors"]] == ["bsn_checksum"]


async def test_unknown_routing_keys_still_reach_ingest_in_either_lane(
    pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    school = partners["school"]
    for key in ("no.such.type", "onboard.melding.withdraw", "onboard"):
        sent = await school.send({"type": "melding.withdraw"}, routing_key=key)
        receipt = await school.receipt_for(sent)
        assert receipt.body["status"] == "rejected", key
        assert receipt.body["errors"][0]["code"] == "unknown_type", key


async def test_a_live_melding_is_answered_while_an_onboarding_backlog_waits(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    backlog = 3000
    tool = await system.start("tool", setup=no_consumers)
    school, huisarts, jgz = partners["school"], partners["huisarts"], partners["jgz"]
    await system.start("ingest")
    await system.start("matcher")
    await system.start("notifier")
    bsn = valid_bsn(4_500_000)
    earlier = await huisarts.send(register_body("H-1", bsn=bsn))
    assert (await huisarts.receipt_for(earlier)).body["status"] == "accepted"
    # The load queues up while ingest is away; the live melding comes last.
    await system.stop(next(r for r in system.runtimes if r.name == "ingest"))
    await _publish_many(
        jgz,
        [register_body(f"J-{i}", bsn=valid_bsn(4_600_000 + i)) for i in range(backlog)],
        routing_key=ONBOARDING_ROUTING_KEY,
    )
    live = await school.send(register_body("S-LIVE", bsn=bsn))
    assert await queued_messages(tool, bulk(INGEST_QUEUE)) == backlog
    await system.start("ingest")

    receipt = await school.receipt_for(live, timeout=30)
    stored_at_receipt = await _count_meldingen(db, "jgz")
    notice = await school.next(timeout=30)
    stored_at_notice = await _count_meldingen(db, "jgz")
    assert receipt.body["status"] == "accepted"
    assert notice.body["type"] == "match.notice"
    assert [c["partner"] for c in notice.body["counterparts"]] == ["huisarts"]
    # Answered, and matched, while most of the load was still waiting.
    assert stored_at_receipt < backlog
    assert stored_at_notice < backlog

    receipts = await _distinct(jgz, backlog, timeout=60)
    assert {r.body["status"] for r in receipts} == {"accepted"}
    assert len({r.body["in_reply_to"] for r in receipts}) == backlog


async def test_a_flooding_partner_is_served_after_the_others(
    test_region: RegionUnderTest,
    user_prefix: str,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    rate, burst, flood = 5.0, 20, 1500
    await apply_region(test_region, region_document(user_prefix, live_rate=rate, live_burst=burst))
    tool = await system.start("tool", setup=no_consumers)
    school, jgz = partners["school"], partners["jgz"]
    # The flood is queued in vi.ingest ahead of the other partner's melding.
    await _publish_many(
        jgz, [register_body(f"J-{i}", bsn=valid_bsn(4_700_000 + i)) for i in range(flood)]
    )
    live = await school.send(register_body("S-FAIR", bsn=valid_bsn(4_800_000)))
    assert await queued_messages(tool, INGEST_QUEUE) == flood + 1
    diverted_before = _diverted("jgz")
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)

    receipt = await school.receipt_for(live, timeout=30)
    stored_at_receipt = await _count_meldingen(db, "jgz")
    assert receipt.body["status"] == "accepted"
    # The school was answered before the flood behind its burst was handled.
    assert stored_at_receipt < flood - burst
    diverted = _diverted("jgz") - diverted_before
    assert diverted >= flood - burst - rate * 30

    # Nothing lost: every flooded melding is answered in the end.
    receipts = await _distinct(jgz, flood, timeout=60)
    assert {r.body["status"] for r in receipts} == {"accepted"}
    assert len({r.body["in_reply_to"] for r in receipts}) == flood


async def test_declaring_the_lanes_over_the_old_binding_routes_each_message_once(
    system: System, partners: dict[str, PartnerClient]
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    school = partners["school"]
    # The topology before lanes: vi.ingest bound straight to vi.inbound.
    async with tool.connection.channel() as channel:
        ingest = await channel.get_queue(INGEST_QUEUE, ensure=False)
        await ingest.bind(INBOUND_EXCHANGE, routing_key="#")
    await school.send(register_body("S-OLD", bsn=valid_bsn(4_900_001)))
    # Both ways lead to vi.ingest: the broker routes to a queue once per message.
    assert len(await drain(tool, INGEST_QUEUE)) == 1

    await tool.declare_topology()  # as `region apply` and every service at start do
    await school.send(register_body("S-NEW", bsn=valid_bsn(4_900_002)))
    await school.send(
        register_body("S-ON", bsn=valid_bsn(4_900_003)), routing_key=ONBOARDING_ROUTING_KEY
    )
    # The old binding is gone: the onboarding message no longer reaches vi.ingest.
    [live] = await drain(tool, INGEST_QUEUE)
    [onboarding] = await drain(tool, bulk(INGEST_QUEUE))
    assert b"S-NEW" in live.body
    assert b"S-ON" in onboarding.body


async def test_a_flood_ahead_is_passed_over_unread_to_reach_another_partner(
    test_region: RegionUnderTest,
    user_prefix: str,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    """A partner re-sending bad messages in a loop: each is answered `rejected` by
    ingest itself, so when ingest read vi.ingest in order (validating every message on
    its pass) all of the flood ahead was answered before the other partner's message
    was even looked at. Now the flood beyond the share is passed over unread."""
    rate, burst, flood = 5.0, 20, 1500
    await apply_region(test_region, region_document(user_prefix, live_rate=rate, live_burst=burst))
    tool = await system.start("tool", setup=no_consumers)
    school, jgz = partners["school"], partners["jgz"]
    await _publish_many(jgz, [{"melding_ref": f"J-{i}", "broken": True} for i in range(flood)])
    live = await school.send(register_body("S-FAIR-2", bsn=valid_bsn(4_810_000)))
    assert await queued_messages(tool, INGEST_QUEUE) == flood + 1
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)

    receipt = await school.receipt_for(live, timeout=30)
    answered_at_receipt = await _claimed(db, "jgz")
    assert receipt.body["status"] == "accepted"
    # Reading in order, ingest had answered (nearly) all of the flood by now.
    assert answered_at_receipt < flood // 2

    # Nothing lost: every flooded message is answered in the end, once.
    receipts = await _distinct(jgz, flood, timeout=60)
    assert {r.body["status"] for r in receipts} == {"rejected"}
    assert len({r.body["in_reply_to"] for r in receipts}) == flood
    assert _new(await jgz.quiet(0.5), receipts) == []


async def test_a_packed_message_forwarded_twice_is_answered_once(
    test_region: RegionUnderTest,
    user_prefix: str,
    system: System,
    partners: dict[str, PartnerClient],
) -> None:
    """Ingest crashes after its pack was confirmed but before the original's ack:
    the original comes again and is packed again. One answer, `accepted`, still."""
    rate, burst = 0.001, 1
    await apply_region(test_region, region_document(user_prefix, live_rate=rate, live_burst=burst))
    tool = await system.start("tool", setup=no_consumers)
    jgz = partners["jgz"]
    quotas = PartnerQuotas()
    assert quotas.admit("jgz", rate=rate, burst=burst, now=time.monotonic())  # the burst spent
    sorter = _first_pass(tool, quotas)
    sent = await jgz.send(register_body("J-TWICE", bsn=valid_bsn(4_820_000)))

    async with tool.connection.channel() as channel:
        queue = await channel.get_queue(INGEST_QUEUE, ensure=False)
        first = await queue.get(timeout=5)
        await sorter([Delivery(first, tool.settings.service_broker_user)])
        await first.nack(requeue=True)  # the crash: never acked
        again = await queue.get(timeout=5)
        assert again.redelivered
        redelivery = Delivery(again, tool.settings.service_broker_user)
        await sorter([redelivery])
        await again.ack()
    await sorter.acked([redelivery])
    assert await queued_messages(tool, bulk(INGEST_QUEUE)) == 2  # two packs

    await system.start("ingest")
    await system.start("matcher")
    receipt = await jgz.receipt_for(sent, timeout=30)
    assert receipt.body["status"] == "accepted"
    await eventually(
        lambda: _all_empty(tool, [bulk(INGEST_QUEUE), bulk(MATCHER_QUEUE)]), timeout=15
    )
    assert _new(await jgz.quiet(1.0), [receipt]) == []  # no `duplicate` for the second copy


async def test_a_message_failing_alone_leaves_its_pack_and_its_neighbours_are_answered(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    """A pack of messages within their share, one of which ingest cannot store the
    answer of: that one is retried and parked on its own, whole; the others are
    answered once (a failing pack used to be retried and parked as a whole)."""
    await db.execute(
        """CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.message_id = 'doomed-2' THEN RAISE EXCEPTION 'disk full'; END IF;
             RETURN NEW;
           END $$;
           CREATE TRIGGER refuse_doomed BEFORE INSERT ON inbox
             FOR EACH ROW EXECUTE FUNCTION refuse_doomed();"""
    )
    tool = await system.start("tool", setup=no_consumers)
    school = partners["school"]
    doomed_body = register_body("P-DOOMED", bsn="123456789")  # rejected: ingest stores it
    await school.send(doomed_body, message_id="doomed-2")
    good = await school.send(register_body("P-GOOD", bsn=valid_bsn(4_830_000)))
    first = _first_pass(tool)
    async with tool.connection.channel() as channel:
        queue = await channel.get_queue(INGEST_QUEUE, ensure=False)
        originals = [await queue.get(timeout=5), await queue.get(timeout=5)]
        deliveries = [Delivery(m, tool.settings.service_broker_user) for m in originals]
        await first(deliveries)
        for message in originals:
            await message.ack()
    await first.acked(deliveries)
    assert await queued_messages(tool, ADMITTED_QUEUE) == 1  # one pack of both

    await system.start("ingest")
    await system.start("matcher")
    receipt = await school.receipt_for(good, timeout=30)
    assert receipt.body["status"] == "accepted"
    parked: list[Any] = []

    async def is_parked() -> bool:
        parked.extend(await drain(tool, parked_queue(ADMITTED_QUEUE)))
        return bool(parked)

    await eventually(is_parked, timeout=15)
    [kept] = parked
    assert kept.message_id == "doomed-2" and kept.body == json.dumps(doomed_body).encode()
    assert kept.headers[ATTEMPT_HEADER] == 3  # its own retries, after it left the pack
    assert "disk full" in str(kept.headers[ERROR_HEADER])
    assert _new(await school.quiet(0.5), [receipt]) == []


def _first_pass(tool: Runtime, quotas: PartnerQuotas | None = None) -> FirstPass:
    return FirstPass(
        tool.pool,
        tool.publisher,
        tool.region,
        service=tool.name,
        service_user=tool.settings.service_broker_user,
        pack_size=tool.settings.batch_size,
        quotas=quotas,
    )


async def _all_empty(runtime: Any, queues: list[str]) -> bool:
    return all([await queued_messages(runtime, q) == 0 for q in queues])


async def test_the_live_queues_are_watched_only_while_bulk_work_is_in_hand(
    system: System,
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    lanes = LiveFirst()
    watch = asyncio.create_task(lanes.watch(tool.connection, WATCHED_LIVE_QUEUES, 0.01))
    release = asyncio.Event()

    async def bulk_batch(_: str) -> None:
        await release.wait()

    try:
        await asyncio.sleep(0.3)
        assert lanes.looks == 0  # no bulk work: no questions to the broker
        work = asyncio.create_task(lanes.serve(Lane.BULK, bulk_batch)("b"))
        await eventually(lambda: _true(lanes.looks >= 3), timeout=5)
        release.set()
        await work
        await asyncio.sleep(0.1)
        after = lanes.looks
        await asyncio.sleep(0.3)
        assert lanes.looks == after  # the work done: quiet again
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value


async def test_back_to_back_bulk_work_trusts_a_fresh_look_at_the_live_queues(
    system: System,
) -> None:
    """Each bulk batch used to wait for a look of its own, which capped a bulk lane at
    one batch per watch interval; a look younger than LOOK_FRESH_SECONDS now serves."""
    tool = await system.start("tool", setup=no_consumers)
    lanes = LiveFirst()
    watch = asyncio.create_task(lanes.watch(tool.connection, WATCHED_LIVE_QUEUES, 0.4))
    done: list[int] = []

    async def bulk_batch(n: int) -> None:
        done.append(n)

    try:
        for n in range(5):
            await asyncio.wait_for(lanes.serve(Lane.BULK, bulk_batch)(n), 10)
        assert done == [0, 1, 2, 3, 4]
        assert lanes.looks <= 2  # one look served them all (two if one came in between)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
