"""Wiring of the notifier service: which queues it consumes and what runs beside them."""

from __future__ import annotations

from services.notifier.handler import EmailHandler, FanOutHandler
from services.notifier.mailer import mailer_for
from shared.amqp.topology import EMAIL_QUEUE, NOTIFIER_QUEUE
from shared.service import Runtime

# E-mails in flight per notifier, each on an SMTP connection of its own.
EMAIL_PREFETCH = 16


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    runtime.consume(NOTIFIER_QUEUE, FanOutHandler(runtime))
    emails = EmailHandler(runtime, mailer_for(settings.smtp_url, settings.mail_dir))
    runtime.consume(
        EMAIL_QUEUE,
        emails,
        prefetch=min(settings.prefetch, EMAIL_PREFETCH),
        batch_handler=emails.handle_batch,
    )
