"""Batching: messages that queue up are handled together, and a batch that fails is
handled again message by message, so one bad message never takes its neighbours with
it and nothing is lost, doubled or parked that should not be."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from email import message_from_bytes, policy
from typing import Any

import aio_pika
import asyncpg

from services.matcher.context import Transaction
from services.matcher.handler import MatcherHandler, command_codec
from services.notifier.handler import NOTIFY_EVENTS, FanOutHandler
from shared.amqp.consuming import ATTEMPT_HEADER, DELIVERIES, Delivery, PoisonMessage
from shared.amqp.inspect import HeldMessage, pass_through, replay
from shared.amqp.topology import (
    EMAIL_QUEUE,
    INGEST_QUEUE,
    INTERNAL_EXCHANGE,
    MATCHER_KEY,
    MATCHER_QUEUE,
    NOTIFIER_KEY,
    NOTIFIER_QUEUE,
    parked_queue,
)
from shared.envelopes import (
    COMMAND_BUNDLE_TYPE,
    EMAIL_BUNDLE_TYPE,
    ITEMS_PER_MESSAGE,
    NOTIFY_BUNDLE_TYPE,
    Command,
    EmailBundle,
    NotifyBundle,
)
from shared.lanes import Lane
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from shared.service import Runtime
from testing.ports import free_port
from tests.conftest import System
from tests.integration.test_email_delivery import Collector, sample_event, smtp_server
from tests.support import (
    RegionUnderTest,
    drain,
    eventually,
    no_consumers,
    queued_messages,
    register_body,
    valid_bsn,
)


async def test_queued_messages_come_in_batches_and_a_failing_batch_goes_one_by_one(
    system: System,
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    for i in range(60):
        body = b"bad" if i == 37 else f"ok-{i}".encode()
        await tool.publisher.publish(
            OutboundMessage(
                INTERNAL_EXCHANGE, MATCHER_KEY, body, message_type=None, message_id=f"m-{i}"
            )
        )

    batches: list[list[bytes]] = []
    # Handled alone after their batch failed, with whether they were seen before.
    singles: list[tuple[bytes, bool]] = []

    async def handler(deliveries: Sequence[Delivery]) -> None:
        if any(d.after_failed_batch for d in deliveries):
            (delivery,) = deliveries
            singles.append((delivery.body, delivery.seen_before))
            if delivery.body == b"bad":
                raise PoisonMessage("bad on purpose")
            return
        bodies = [d.body for d in deliveries]
        batches.append(bodies)
        if b"bad" in bodies:
            raise RuntimeError("a bad message in the batch")

    async def setup(runtime: Runtime) -> None:
        runtime.consume(MATCHER_QUEUE, DELIVERIES, handler)

    consumer = await system.start("matcher", setup=setup)

    parked_seen: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def settled() -> bool:
        parked_seen.extend(await drain(consumer, parked_queue(MATCHER_QUEUE)))
        handled = {b for bodies in batches if b"bad" not in bodies for b in bodies}
        handled.update(body for body, _ in singles if body != b"bad")
        return len(handled) == 59 and len(parked_seen) == 1

    await eventually(settled, timeout=15)
    assert max(len(bodies) for bodies in batches) > 1, batches
    assert max(len(bodies) for bodies in batches) <= consumer.settings.batch_size

    failed = next(bodies for bodies in batches if b"bad" in bodies)
    assert len(failed) > 1  # the bad one had neighbours
    # Every good message was handled exactly once: in a batch that succeeded, or alone
    # after its batch failed (then marked as possibly handled before).
    handled = Counter(b for bodies in batches if b"bad" not in bodies for b in bodies)
    handled.update(body for body, _ in singles if body != b"bad")
    assert handled == Counter(f"ok-{i}".encode() for i in range(60) if i != 37)
    assert sorted(body for body, _ in singles if body != b"bad") == sorted(
        b for b in failed if b != b"bad"
    )
    assert all(seen for _, seen in singles)
    # Only the bad one is parked.
    assert [m.body for m in parked_seen] == [b"bad"]
    # Every delivery was settled: none comes back when the consumer goes away.
    await system.stop(consumer)
    await asyncio.sleep(0.2)
    assert await queued_messages(tool, MATCHER_QUEUE) == 0


class _FailsOn(MatcherHandler):
    """A matcher whose handling of one melding_ref fails, as a bug would."""

    def __init__(self, runtime: Runtime, ref: str, seen: list[int]) -> None:
        super().__init__(runtime.outbox, runtime.region, runtime.pseudonyms)
        self._ref = ref
        self._seen = seen

    async def __call__(self, commands: Sequence[Command]) -> None:
        self._seen.append(len(commands))
        await super().__call__(commands)

    async def _register_all(
        self,
        batch: Transaction,
        claimed: Sequence[tuple[Command, uuid.UUID | None]],
        identities: dict[int, bytes],
    ) -> None:
        if any(getattr(c.message, "melding_ref", None) == self._ref for c, _ in claimed):
            raise RuntimeError("this melding breaks the matcher")
        await super()._register_all(batch, claimed, identities)


async def test_ingest_forwards_a_burst_as_one_batch_and_a_failing_batch_is_split(
    system: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    tool = await system.start("tool", setup=no_consumers)
    school = partners["school"]
    refs = [f"S-{i}" for i in range(25)]
    sent = {
        ref: await school.send(register_body(ref, bsn=valid_bsn(7_000 + i)))
        for i, ref in enumerate(refs)
    }
    await system.start("ingest")  # the burst waits for it in vi.inbound

    async def forwarded() -> bool:
        return (
            await queued_messages(tool, INGEST_QUEUE) == 0
            and await queued_messages(tool, MATCHER_QUEUE) > 0
        )

    await eventually(forwarded)
    carried: list[int] = []

    async def setup(runtime: Runtime) -> None:
        # Each message alone here: one command or one command bundle.
        runtime.consume(
            MATCHER_QUEUE,
            command_codec(Lane.LIVE),
            _FailsOn(runtime, "S-13", carried),
            batch_size=1,
        )

    await system.start("matcher", setup=setup)
    receipts = [await school.next() for _ in range(24)]
    assert await school.quiet(0.5) == []
    assert {r.body["melding_ref"] for r in receipts} == set(refs) - {"S-13"}
    assert all(r.body["status"] == "accepted" for r in receipts)
    assert {r.body["in_reply_to"] for r in receipts} == {sent[r] for r in refs if r != "S-13"}
    assert max(carried) > 1  # ingest sent at least one batch of commands

    parked: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def broken_one_parked() -> bool:
        parked.extend(await drain(tool, parked_queue(MATCHER_QUEUE)))
        return len(parked) >= 1

    await eventually(broken_one_parked)
    await asyncio.sleep(0.5)
    parked.extend(await drain(tool, parked_queue(MATCHER_QUEUE)))
    # Split from its batch, the broken command was retried and parked on its own.
    assert len(parked) == 1 and parked[0].type != COMMAND_BUNDLE_TYPE
    assert Command.model_validate_json(parked[0].body).message_id == sent["S-13"]
    assert (parked[0].headers or {})[ATTEMPT_HEADER] == 3
    assert await db.fetchval("SELECT count(*) FROM melding") == 24
    assert await db.fetchval("SELECT count(*) FROM inbox") == 24


class _Refusing(Collector):
    """An SMTP server that refuses one recipient until told otherwise."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused: str | None = refused

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == self.refused:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_an_email_batch_with_one_refused_recipient_sends_the_rest_once(
    test_region: RegionUnderTest, system: System, db: asyncpg.Connection[Any]
) -> None:
    port = free_port()
    server = _Refusing("regie@amsterdam.example")
    with smtp_server(port, server):
        notifier = await system.start(
            "notifier",
            settings=test_region.with_settings(smtp_url=f"smtp://127.0.0.1:{port}").settings,
        )
        events = [sample_event(test_region) for _ in range(2)]
        for event in events:
            await notifier.publisher.publish(
                OutboundMessage(
                    INTERNAL_EXCHANGE,
                    NOTIFIER_KEY,
                    event.model_dump_json().encode(),
                    message_type=None,
                    message_id=str(event.event_id),
                ),
            )
        parked_email = parked_queue(EMAIL_QUEUE)
        service_user = notifier.settings.service_broker_user
        held: list[HeldMessage] = []

        async def look(message: HeldMessage) -> bool:
            held.append(message)
            return False

        async def refused_ones_parked() -> bool:
            held.clear()
            await pass_through(
                notifier.connection,
                notifier.publisher,
                parked_email,
                look,
                service_user=service_user,
            )
            jobs = [j for h in held for j in EmailBundle.model_validate_json(h.message.body).items]
            return sum(1 for j in jobs if j.to == "regie@amsterdam.example") >= 2

        await eventually(refused_ones_parked, timeout=15)
        assert all(h.message.type == EMAIL_BUNDLE_TYPE for h in held)
        # The four e-mails to the partners went out once each; the refused two did not.
        assert len(server.messages) == 4
        assert await db.fetchval("SELECT count(*) FROM sent_email") == 4

        server.refused = None

        async def replay_it(message: HeldMessage) -> bool:  # the operator replays them
            await replay(notifier.publisher, message, work_queue=EMAIL_QUEUE)
            return True

        await pass_through(
            notifier.connection,
            notifier.publisher,
            parked_email,
            replay_it,
            service_user=service_user,
        )

        async def all_six() -> bool:
            return int(await db.fetchval("SELECT count(*) FROM sent_email")) == 6

        await eventually(all_six)
        await asyncio.sleep(0.3)
    ids = [message_from_bytes(raw, policy=policy.default)["Message-ID"] for raw in server.messages]
    expected = {f"<{j.message_id}@verwijsindex.invalid>" for e in events for j in e.emails}
    assert len(ids) == 6 and set(ids) == expected  # every e-mail once, none twice


async def test_the_emails_of_many_events_travel_in_bounded_messages(
    test_region: RegionUnderTest, system: System
) -> None:
    async def fan_out_only(runtime: Runtime) -> None:
        runtime.consume(NOTIFIER_QUEUE, NOTIFY_EVENTS, FanOutHandler(runtime.publisher))

    notifier = await system.start("notifier", setup=fan_out_only)
    events = [sample_event(test_region) for _ in range(15)]  # 3 e-mails each
    await notifier.publisher.publish(
        OutboundMessage(
            INTERNAL_EXCHANGE,
            NOTIFIER_KEY,
            NotifyBundle(items=events).model_dump_json().encode(),
            message_type=NOTIFY_BUNDLE_TYPE,
            message_id=str(events[0].event_id),
        ),
    )

    async def all_jobs_queued() -> bool:
        return await queued_messages(notifier, EMAIL_QUEUE) == 2

    await eventually(all_jobs_queued)
    queued = await drain(notifier, EMAIL_QUEUE)
    batches = [EmailBundle.model_validate_json(m.body).items for m in queued]
    assert sorted(len(jobs) for jobs in batches) == [13, ITEMS_PER_MESSAGE]
    sent = {j.message_id for jobs in batches for j in jobs}
    assert sent == {j.message_id for e in events for j in e.emails}
