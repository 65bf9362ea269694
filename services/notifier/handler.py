"""The notifier: fans events out into partner notices and e-mail jobs, and delivers
e-mail. Notices and e-mails travel separately, so SMTP trouble never holds up a
partner's notice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg

from services.notifier.mailer import SMTP_CONNECTIONS, Mailer
from services.notifier.mime import render
from shared import metrics
from shared.amqp.consuming import bundles
from shared.amqp.publisher import Publisher
from shared.amqp.topology import EMAIL_KEY, INTERNAL_EXCHANGE, OUTBOUND_EXCHANGE
from shared.envelopes import (
    EMAIL_BUNDLE_TYPE,
    NOTIFY_BUNDLE_TYPE,
    EmailBundle,
    EmailJob,
    NotifyEvent,
    chunked,
    derived_id,
)
from shared.lanes import Lane
from shared.logs import get_logger
from shared.outgoing import OutboundMessage

log = get_logger(__name__)

NOTIFY_EVENTS = bundles(NOTIFY_BUNDLE_TYPE, NotifyEvent, "notify event")
EMAIL_JOBS = bundles(EMAIL_BUNDLE_TYPE, EmailJob, "e-mail job")


class FanOutHandler:
    """Publish every notice and the events' e-mails (confirmed), then ack: a redelivery
    republishes with the same ids, which partners and the e-mail step drop as
    duplicates. The e-mails of all events handled together travel as one message."""

    def __init__(self, publisher: Publisher, *, lane: Lane = Lane.LIVE) -> None:
        self._publisher = publisher
        # The e-mail jobs of an event go on in the lane it came in.
        self._lane = lane

    async def __call__(self, events: Sequence[NotifyEvent]) -> None:
        if not events:
            return
        jobs = [job for event in events for job in event.emails]
        await self._publisher.publish(
            *(
                OutboundMessage(
                    OUTBOUND_EXCHANGE,
                    notice.partner_id,
                    _json(notice.body),
                    message_type=notice.message_type,
                    message_id=str(notice.message_id),
                    correlation_id=str(event.event_id),
                )
                for event in events
                for notice in event.notices
            ),
            *(_email_message(chunk, events[0].event_id, self._lane) for chunk in chunked(jobs)),
        )
        # One line per batch: at bulk load a line per event or e-mail costs more than
        # the work it reports.
        log.info(
            "notify_fanned_out",
            event_ids=[str(event.event_id) for event in events],
            notices=sum(len(event.notices) for event in events),
            emails=len(jobs),
        )


def _email_message(jobs: Sequence[EmailJob], first_event: uuid.UUID, lane: Lane) -> OutboundMessage:
    # Derived from the jobs, so a redelivered event group repeats the same message id.
    bundle_id = derived_id(first_event, "emails", *(str(j.message_id) for j in jobs))
    return OutboundMessage(
        INTERNAL_EXCHANGE,
        lane.of(EMAIL_KEY),
        EmailBundle(items=list(jobs)).model_dump_json().encode(),
        message_type=EMAIL_BUNDLE_TYPE,
        message_id=str(bundle_id),
        correlation_id=str(first_event),
    )


def _json(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class EmailHandler:
    """Send each e-mail job once, by its stable Message-ID.

    The jobs' ids are claimed in `sent_email` inside a transaction that stays open while
    the e-mails are handed over: a second copy of a job (a duplicated or replayed
    message) waits for the first and then finds it sent. When a send fails, the claims
    of the e-mails not yet sent are taken back before the commit, so the retry (or a
    replay from the parked queue) sends exactly those. Only a crash between handing an
    e-mail over and the commit sends it again, with the same Message-ID (documented:
    at-least-once for e-mail, recognisable as a resend).

    Jobs that queue up are claimed together in one statement and one transaction.
    """

    def __init__(
        self, pool: asyncpg.Pool[Any], mailer: Mailer, *, mail_from: str, service: str
    ) -> None:
        self._pool = pool
        self._mailer = mailer
        self._mail_from = mail_from
        # The service name the e-mail metrics are counted under.
        self._service = service
        # E-mails handed over at once, each on an SMTP connection the mailer keeps.
        self._sending = asyncio.Semaphore(SMTP_CONNECTIONS)

    async def __call__(self, batch: Sequence[EmailJob]) -> None:
        jobs: dict[str, EmailJob] = {}
        for job in batch:
            jobs.setdefault(str(job.message_id), job)
        failed: dict[str, BaseException] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = {
                row["message_id"]
                for row in await conn.fetch(
                    """INSERT INTO sent_email (message_id) SELECT unnest($1::text[])
                       ON CONFLICT DO NOTHING RETURNING message_id""",
                    list(jobs),
                )
            }
            to_send = [key for key in jobs if key in claimed]
            outcomes = await asyncio.gather(
                *(self._send(jobs[key]) for key in to_send), return_exceptions=True
            )
            failed = {key: out for key, out in zip(to_send, outcomes, strict=True) if out}
            if any(not isinstance(err, Exception) for err in failed.values()):
                raise next(iter(failed.values()))  # cancelled: roll every claim back
            if failed:
                await conn.execute(
                    "DELETE FROM sent_email WHERE message_id = ANY($1::text[])", list(failed)
                )
        sent = len(to_send) - len(failed)
        metrics.EMAILS.labels(self._service, "sent").inc(sent)
        metrics.EMAILS.labels(self._service, "failed").inc(len(failed))
        log.info(
            "emails_sent",
            sent=sent,
            already_sent=len(jobs) - len(to_send),
            failed=len(failed),
            templates=dict(Counter(jobs[key].template for key in to_send if key not in failed)),
        )
        if failed:
            raise next(iter(failed.values()))

    async def _send(self, job: EmailJob) -> None:
        async with self._sending:
            await self._mailer.send(render(job, self._mail_from))
