"""Wiring of the notifier service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.notifier.handler import EmailHandler, FanOutHandler
from services.notifier.mailer import mailer_for
from shared.amqp.topology import EMAIL_QUEUE, NOTIFIER_QUEUE
from shared.service import Runtime


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    runtime.consume(NOTIFIER_QUEUE, FanOutHandler(runtime))
    runtime.consume(
        EMAIL_QUEUE,
        EmailHandler(runtime, mailer_for(settings.smtp_url, settings.mail_dir)),
        prefetch=min(settings.prefetch, 8),
    )
