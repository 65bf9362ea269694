"""Wiring of the notifier service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.notifier.handler import EMAIL_JOBS, NOTIFY_EVENTS, EmailHandler, FanOutHandler
from services.notifier.mailer import mailer_for
from shared import metrics
from shared.amqp.topology import EMAIL_QUEUE, NOTIFIER_QUEUE
from shared.lanes import Lane, LiveFirst
from shared.service import Runtime

# E-mail messages held per notifier, each with at most ITEMS_PER_MESSAGE e-mails.
EMAIL_PREFETCH = 8
# Notify messages held, and handled together. Each holds up to ITEMS_PER_MESSAGE
# events, so these bound the events (with their notices and e-mail jobs) a notifier
# holds, and has parsed, at once.
NOTIFY_PREFETCH = 16
NOTIFY_BATCH_SIZE = 4


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    mailer = mailer_for(settings.smtp_url, settings.mail_dir)
    runtime.on_close(mailer.close)
    metrics.watch_email(runtime.name)
    emails = EmailHandler(runtime.pool, mailer, mail_from=settings.mail_from, service=runtime.name)
    # Notices and e-mails each serve their bulk queue with what live leaves over.
    notices, mail = LiveFirst(), LiveFirst()
    runtime.background(lambda: notices.watch(runtime.connection))
    for lane in Lane:
        runtime.consume(
            lane.of(NOTIFIER_QUEUE),
            NOTIFY_EVENTS,
            notices.serve(lane, FanOutHandler(runtime.publisher, lane=lane)),
            prefetch=min(settings.prefetch, NOTIFY_PREFETCH),
            batch_size=NOTIFY_BATCH_SIZE,
            batch_concurrency=lane.batch_concurrency,
        )
        runtime.consume(
            lane.of(EMAIL_QUEUE),
            EMAIL_JOBS,
            mail.serve(lane, emails),
            prefetch=min(settings.prefetch, EMAIL_PREFETCH),
            batch_concurrency=lane.batch_concurrency,
        )
