"""Lanes without I/O: the per-partner token bucket, live-first scheduling, and how a
message keeps its lane."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.ingest.quota import PartnerQuotas, TokenBucket
from shared.amqp.topology import (
    EMAIL_QUEUE,
    INTERNAL_EXCHANGE,
    MATCHER_KEY,
    NOTIFIER_KEY,
    OUTBOUND_EXCHANGE,
    WORK_QUEUES,
)
from shared.contract.inbound import ONBOARDING_ROUTING_KEY, inbound_type
from shared.lanes import Lane, LiveFirst, in_lane
from shared.outgoing import OutboundMessage


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.4) is False  # 0.8 of a token
    assert bucket.take(100.5) is True
    assert bucket.take(100.5) is False
    # A long pause refills to the burst, never beyond.
    assert [bucket.take(200.0) for _ in range(4)] == [True, True, True, False]


def test_a_clock_step_backwards_neither_refills_nor_drains() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0) is True
    assert bucket.take(5.0) is False
    assert bucket.take(10.5) is False
    assert bucket.take(11.0) is True


def test_each_partner_has_a_bucket_of_its_own() -> None:
    quotas = PartnerQuotas()
    assert [quotas.admit("a", rate=1, burst=2, now=0.0) for _ in range(3)] == [True, True, False]
    assert quotas.admit("b", rate=1, burst=2, now=0.0) is True
    # A new region config with another rate starts afresh.
    assert quotas.admit("a", rate=5, burst=2, now=0.0) is True


def test_every_work_queue_and_internal_key_has_a_bulk_twin() -> None:
    assert Lane.LIVE.of(MATCHER_KEY) == MATCHER_KEY
    assert Lane.BULK.of(MATCHER_KEY) == "matcher.bulk"
    for queue in ("vi.ingest", "vi.matcher", "vi.notifier", EMAIL_QUEUE):
        assert Lane.BULK.of(queue) in WORK_QUEUES
        exchange, key = WORK_QUEUES[Lane.BULK.of(queue)]
        if exchange == INTERNAL_EXCHANGE:
            assert key == Lane.BULK.of(WORK_QUEUES[queue][1])


def test_internal_messages_keep_their_lane_and_partner_messages_are_untouched() -> None:
    def message(exchange: str, key: str) -> OutboundMessage:
        return OutboundMessage(exchange, key, b"{}", "t", uuid.uuid4())

    receipt = message(OUTBOUND_EXCHANGE, "school")
    event = message(INTERNAL_EXCHANGE, NOTIFIER_KEY)
    assert in_lane([receipt, event], Lane.LIVE) == [receipt, event]
    moved = in_lane([receipt, event], Lane.BULK)
    assert moved[0] == receipt
    assert moved[1].routing_key == "notifier.bulk"
    assert moved[1].message_id == event.message_id


def test_the_onboarding_key_stands_for_melding_register() -> None:
    assert inbound_type(ONBOARDING_ROUTING_KEY) == "melding.register"
    assert inbound_type("melding.withdraw") == "melding.withdraw"
    assert inbound_type("onboard.melding.withdraw") == "onboard.melding.withdraw"


async def test_bulk_work_waits_while_live_work_is_in_hand() -> None:
    lanes = LiveFirst()
    order: list[str] = []
    release = asyncio.Event()

    async def live(name: str) -> None:
        order.append(f"{name} start")
        await release.wait()
        order.append(f"{name} end")

    async def bulk(name: str) -> None:
        order.append(name)

    live_task = asyncio.create_task(lanes.serve(Lane.LIVE, live)("live"))
    await asyncio.sleep(0)
    bulk_task = asyncio.create_task(lanes.serve(Lane.BULK, bulk)("bulk"))
    await asyncio.sleep(0.01)
    assert order == ["live start"]  # the bulk work has not started
    release.set()
    await asyncio.gather(live_task, bulk_task)
    assert order == ["live start", "live end", "bulk"]
    assert lanes.live_in_hand == 0


async def test_live_work_never_waits_for_bulk_work() -> None:
    lanes = LiveFirst()
    release = asyncio.Event()
    done: list[str] = []

    async def slow_bulk(_: str) -> None:
        await release.wait()
        done.append("bulk")

    async def live(_: str) -> None:
        done.append("live")

    bulk_task = asyncio.create_task(lanes.serve(Lane.BULK, slow_bulk)("b"))
    await asyncio.sleep(0)
    await asyncio.wait_for(lanes.serve(Lane.LIVE, live)("l"), 1.0)
    assert done == ["live"]
    release.set()
    await bulk_task


async def test_a_failing_live_handler_does_not_block_bulk_for_ever() -> None:
    lanes = LiveFirst()

    async def broken(_: str) -> None:
        raise RuntimeError("boom")

    async def bulk(_: str) -> None:
        return None

    with pytest.raises(RuntimeError):
        await lanes.serve(Lane.LIVE, broken)("x")
    await asyncio.wait_for(lanes.serve(Lane.BULK, bulk)("y"), 1.0)


async def test_long_bulk_work_yields_to_live_work_between_its_parts() -> None:
    lanes = LiveFirst()
    await asyncio.wait_for(lanes.after_live(), 1.0)  # nothing live: on at once
    release = asyncio.Event()

    async def live(_: str) -> None:
        await release.wait()

    live_task = asyncio.create_task(lanes.serve(Lane.LIVE, live)("l"))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(lanes.after_live())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    release.set()
    await asyncio.wait_for(waiting, 1.0)
    await live_task
