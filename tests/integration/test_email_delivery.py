"""Exactly-once effect for notices and e-mails, and e-mail through a real SMTP server
that is down for a while: notices are not held up, e-mails are retried, parked and
delivered once when replayed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import aio_pika
import asyncpg
from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY

from bench.traffic import SmtpSink
from shared.amqp.consuming import ATTEMPT_HEADER, ERROR_HEADER
from shared.amqp.topology import (
    EMAIL_QUEUE,
    INTERNAL_EXCHANGE,
    NOTIFIER_KEY,
    parked_queue,
)
from shared.announce import match_event
from shared.envelopes import EMAIL_BUNDLE_TYPE, EmailJob, NotifyEvent, unpack
from shared.index.domain import Contact, StoredMelding
from shared.index.participants import participant
from shared.outgoing import OutboundMessage, new_message_id
from shared.partner_client import PartnerClient
from testing.ports import free_port
from tests.conftest import System
from tests.integration.test_matching import Mailbox
from tests.support import MatcherCrashingOnce, RegionUnderTest, eventually, mails, valid_bsn


def sample_event(region: RegionUnderTest) -> NotifyEvent:
    def stored(id: int, partner: str) -> StoredMelding:
        return StoredMelding(
            id=id,
            partner_id=partner,
            melding_ref=f"{partner}-ref",
            active=True,
            registered_at=datetime.now(UTC),
            reporter=Contact(f"Contact {partner}", f"{partner}@x.example", None),
        )

    config = region.region
    return match_event(
        match_id=uuid.uuid4(),
        newcomer=participant(config, stored(2, "jeugdteam")),
        counterparts=[participant(config, stored(1, "school"))],
        lead=None,
        municipality=config.municipalities_by_code["0363"],
    )


async def test_a_notify_event_delivered_twice_has_one_effect_with_the_same_ids(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    notifier = await system.start("notifier")
    event = sample_event(test_region)
    for _ in range(2):  # e.g. the outbox relay and the fast path both published it
        await notifier.publisher.publish(
            OutboundMessage(
                INTERNAL_EXCHANGE,
                NOTIFIER_KEY,
                event.model_dump_json().encode(),
                message_type=None,
                message_id=str(event.event_id),
            ),
        )
    school, team = partners["school"], partners["jeugdteam"]
    for client in (school, team):
        first, second = await client.collect(2)
        # The copy is recognisable: same message_id, same body.
        assert first.message_id == second.message_id
        assert first.body == second.body and first.type == "match.notice"
        expected = next(n for n in event.notices if n.partner_id == client.partner_id)
        assert first.message_id == str(expected.message_id)
        assert await client.quiet(0.3) == []

    async def all_sent() -> bool:
        return int(await db.fetchval("SELECT count(*) FROM sent_email")) == 3

    await eventually(all_sent)
    await asyncio.sleep(0.3)
    written = mails(test_region)
    assert len(written) == 3
    ids = {m["Message-ID"] for m in written}
    assert ids == {f"<{job.message_id}@verwijsindex.invalid>" for job in event.emails}
    assert await db.fetchval("SELECT count(*) FROM sent_email") == 3
    assert [p.name for p in test_region.mail_dir.iterdir() if p.suffix != ".eml"] == []


async def test_a_register_handled_again_after_a_crash_tells_nobody_twice(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    matcher = MatcherCrashingOnce(
        when=lambda commands: any("T-1" in c.model_dump_json() for c in commands)
    )
    await system.start("ingest")
    await system.start("matcher", setup=matcher.setup)
    await system.start("notifier")
    school, team = Mailbox(partners["school"]), Mailbox(partners["jeugdteam"])
    bsn = valid_bsn(401)
    await school.register("S-1", bsn=bsn)
    assert (await team.register("T-1", bsn=bsn))["status"] == "accepted"
    await team.notice("match.notice", "T-1")
    await school.notice("match.notice", "S-1")

    async def crashed() -> bool:
        return matcher.crashes == 1

    await eventually(crashed)
    # The redelivery found the message handled and said nothing more.
    assert await team.rest(0.8) == [] and await school.rest(0.1) == []

    async def three() -> bool:
        return len(list(test_region.mail_dir.glob("*.eml"))) == 3

    await eventually(three)
    await asyncio.sleep(0.3)
    assert len(list(test_region.mail_dir.glob("*.eml"))) == 3
    assert await db.fetchval("SELECT count(*) FROM match_group") == 1
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'signalled'") == 2


class Collector:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server(port: int, collector: Collector) -> Iterator[None]:
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


def emails_counted(outcome: str) -> float:
    """vi_emails_total of the notifiers in this process (they share one registry)."""
    value = REGISTRY.get_sample_value(
        "vi_emails_total", {"service": "notifier", "outcome": outcome}
    )
    return value or 0.0


async def test_smtp_down_notices_go_out_mails_are_retried_parked_and_replayed_once(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    port = free_port()  # nothing listens here yet: the mail server is down
    failed_before, sent_before = emails_counted("failed"), emails_counted("sent")
    await system.start("ingest")
    await system.start("matcher")
    notifier = await system.start(
        "notifier",
        settings=test_region.with_settings(smtp_url=f"smtp://127.0.0.1:{port}").settings,
    )
    school, team = Mailbox(partners["school"]), Mailbox(partners["jeugdteam"])
    bsn = valid_bsn(402)
    await school.register("S-1", bsn=bsn)
    await team.register("T-1", bsn=bsn)
    # Partner notices are not held up by the mail server.
    await asyncio.wait_for(team.notice("match.notice", "T-1"), 3)
    await asyncio.wait_for(school.notice("match.notice", "S-1"), 3)

    channel = await notifier.connection.channel()
    parked_from = await channel.get_queue(parked_queue(EMAIL_QUEUE), ensure=False)
    parked: list[aio_pika.abc.AbstractIncomingMessage] = []

    def jobs_in(message: aio_pika.abc.AbstractIncomingMessage) -> list[EmailJob]:
        return unpack(message.body, message.type, EMAIL_BUNDLE_TYPE, EmailJob)

    async def all_parked() -> bool:
        message = await parked_from.get(fail=False, no_ack=True)
        if message is not None:
            parked.append(message)
        return sum(len(jobs_in(m)) for m in parked) == 3

    await eventually(all_parked)
    assert await db.fetchval("SELECT count(*) FROM sent_email") == 0
    # Every attempt at every e-mail counted (3 each; more where a batch failed whole
    # and was tried again one by one): what VIEmailSendingFails watches.
    assert emails_counted("failed") - failed_before >= 9
    assert emails_counted("sent") == sent_before
    for message in parked:
        headers = message.headers or {}
        assert headers[ATTEMPT_HEADER] == 3  # the first try and one per backoff delay
        assert (
            "refused" in str(headers[ERROR_HEADER]).lower()
            or "connect" in str(headers[ERROR_HEADER]).lower()
        ), headers[ERROR_HEADER]

    collector = Collector()
    with smtp_server(port, collector):
        # The operator replays the parked e-mails; one is (by mistake) replayed twice.
        for message in [*parked, parked[0]]:
            await notifier.publisher.publish(
                OutboundMessage(
                    "",
                    EMAIL_QUEUE,
                    message.body,
                    message_type=message.type,
                    message_id=message.message_id or new_message_id(),
                    headers=dict(message.headers or {}),
                    correlation_id=message.correlation_id,
                    content_type=message.content_type,
                    user_id=message.user_id,
                ),
            )

        async def delivered() -> bool:
            return len(collector.messages) >= 3

        await eventually(delivered)
        await asyncio.sleep(0.5)
    assert len(collector.messages) == 3
    mails = [message_from_bytes(raw, policy=policy.default) for raw in collector.messages]
    assert sorted(str(m["To"]) for m in mails) == [
        "contact@jeugdteam.example",
        "contact@school.example",
        "regie@amsterdam.example",
    ]
    assert {m["Message-ID"] for m in mails} == {
        f"<{job.message_id}@verwijsindex.invalid>" for p in parked for job in jobs_in(p)
    }
    assert await db.fetchval("SELECT count(*) FROM sent_email") == 3
    assert emails_counted("sent") - sent_before == 3
    assert await parked_from.get(fail=False, no_ack=True) is None
    assert list(test_region.mail_dir.glob("*.eml")) == []  # by SMTP, not as files
    await channel.close()


async def test_a_stopping_notifier_closes_its_smtp_connections(
    test_region: RegionUnderTest, system: System, partners: dict[str, PartnerClient]
) -> None:
    sink = SmtpSink()
    await sink.start()
    try:
        await system.start("ingest")
        await system.start("matcher")
        notifier = await system.start(
            "notifier", settings=test_region.with_settings(smtp_url=sink.url).settings
        )
        school, team = Mailbox(partners["school"]), Mailbox(partners["jeugdteam"])
        bsn = valid_bsn(404)
        await school.register("S-1", bsn=bsn)
        await team.register("T-1", bsn=bsn)

        async def sent() -> bool:
            return sink.count == 3  # both reporters and the coordinator

        await eventually(sent)
        assert sink._transports  # kept open for the next e-mails
        await system.stop(notifier)

        async def closed() -> bool:
            return not sink._transports

        await eventually(closed, timeout=5)
    finally:
        await sink.close()
