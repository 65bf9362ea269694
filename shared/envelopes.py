"""Internal messages between the services (never seen by partners)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.contract.inbound import InboundMessage


class _Internal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(_Internal):
    """A validated partner message, handed from ingest to the matcher."""

    partner_id: str
    message_id: str
    # The inbound delivery may have been handled before (redelivery or retry): an
    # inbox hit then means "already answered", not "a partner re-sent it".
    seen_before: bool
    message: InboundMessage


COMMAND_BATCH_TYPE = "command.batch"


class CommandBatch(_Internal):
    """Commands ingest validated together, handed to the matcher as one message (one
    broker hop for many partner messages). Each command keeps its own inbox entry,
    receipt and outcome."""

    commands: list[Command]


class PartnerNotice(_Internal):
    partner_id: str
    message_id: uuid.UUID
    message_type: str
    body: dict[str, Any]


EmailTemplate = Literal[
    "match_reporter",
    "match_coordinator",
    "lead_coordinator",
    "regie_escalation",
    "youth_moved_coordinator",
    "inform_reminder",
]


class EmailJob(_Internal):
    message_id: uuid.UUID  # becomes the stable Message-ID header
    to: str
    template: EmailTemplate
    data: dict[str, Any]


EMAIL_BATCH_TYPE = "email.batch"


class EmailBatch(_Internal):
    """The e-mails of one or more events, handed from fan-out to delivery as one
    message. Each e-mail is still sent once, by its own Message-ID."""

    jobs: list[EmailJob]


class NotifyEvent(_Internal):
    """Who must be told what, decided by the matcher or retention; fanned out by the
    notifier."""

    event_id: uuid.UUID
    notices: list[PartnerNotice] = []
    emails: list[EmailJob] = []


NOTIFY_TYPE = "notify"
NOTIFY_BATCH_TYPE = "notify.batch"


class NotifyBatch(_Internal):
    """The events of a batch of commands, handed to the notifier as one message."""

    events: list[NotifyEvent]


def derived_id(parent: uuid.UUID, *parts: str) -> uuid.UUID:
    """A stable id for the n-th thing caused by one event: the same on every redelivery."""
    return uuid.uuid5(parent, "/".join(parts))
