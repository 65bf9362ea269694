"""Internal messages between the services (never seen by partners)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from shared.contract.inbound import InboundMessage
from shared.emails import EmailData, EmailTemplate


class _Internal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(_Internal):
    """A validated partner message, handed from ingest to the matcher."""

    # The partner acted for; for a coordinator's message the portal's own id, under
    # which its inbox entry is kept and its receipt goes to partner.portal.
    partner_id: str
    message_id: str
    # The inbound delivery may have been handled before (redelivery or retry): an
    # inbox hit then means "already answered", not "a partner re-sent it".
    seen_before: bool
    message: InboundMessage
    # The portal user who acted for the partner (header x-vi-actor, contract §9), for
    # the audit log; None when the partner's own system sent the message.
    portal_user: str | None = None
    # The municipality whose match coordinator sent the message through the portal
    # (header x-vi-coordinator, contract §9); None for a partner's message.
    coordinator: str | None = None
    # The publish this command answers (`shared.db.arrivals`): each is answered once,
    # however many copies of the command reach the matcher. None on commands from
    # before arrivals were recorded, which fall back on `seen_before`.
    arrival_id: uuid.UUID | None = None


class PartnerNotice(_Internal):
    partner_id: str
    message_id: uuid.UUID
    message_type: str
    body: dict[str, Any]


class EmailJob(_Internal):
    """One e-mail to send: its recipient and what its template is given. The template's
    name travels beside the data (`{"template": ..., "data": {...}}`), as it always
    has; in Python it is the data's own `template` tag."""

    message_id: uuid.UUID  # becomes the stable Message-ID header
    to: str
    data: EmailData

    @model_validator(mode="before")
    @classmethod
    def _template_tags_the_data(cls, value: Any) -> Any:
        """On the wire the name stands beside the data: move it in, as the union's tag."""
        if isinstance(value, dict) and "template" in value:
            value = dict(value)
            template = value.pop("template")
            data = value.get("data")
            if isinstance(data, dict):
                value["data"] = {**data, "template": template}
            elif getattr(data, "template", template) != template:
                raise ValueError(f"template {template!r} given for {type(data).__name__}")
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def template(self) -> EmailTemplate:
        return self.data.template


class NotifyEvent(_Internal):
    """Who must be told what, decided by the matcher or retention; fanned out by the
    notifier."""

    event_id: uuid.UUID
    notices: list[PartnerNotice] = []
    emails: list[EmailJob] = []


Item = TypeVar("Item", bound=BaseModel)


class Bundle(_Internal, Generic[Item]):
    """Internal messages of one kind that travel as one broker message (one hop for
    many). Each item keeps its own id, inbox entry and outcome."""

    items: list[Item]


# The AMQP types of bundles keep their old ".batch" values: messages in flight during a
# rolling upgrade must still decode.
# Commands ingest validated together, for the matcher.
COMMAND_BUNDLE_TYPE = "command.batch"
CommandBundle = Bundle[Command]
# The events of the commands handled together, for the notifier.
NOTIFY_TYPE = "notify"
NOTIFY_BUNDLE_TYPE = "notify.batch"
NotifyBundle = Bundle[NotifyEvent]
# The e-mails of events fanned out together; each is still sent once, by its own
# Message-ID.
EMAIL_BUNDLE_TYPE = "email.batch"
EmailBundle = Bundle[EmailJob]


# Items per bundle. Bundles nest (a matcher transaction holds many command bundles;
# the notifier fans out the events of many notify messages together), so without a
# bound one message could carry thousands of items that its consumer must hold, and
# on a crash redo, at once.
ITEMS_PER_MESSAGE = 32

T = TypeVar("T")


def chunked(items: Sequence[T], size: int = ITEMS_PER_MESSAGE) -> list[Sequence[T]]:
    """`items` in consecutive slices of at most `size`."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def unpack(body: bytes, message_type: str | None, bundle_type: str, item: type[Item]) -> list[Item]:
    """The items a message carries: a bundle of them when its AMQP type says so, else
    one. Raises pydantic.ValidationError for a body that is neither."""
    if message_type == bundle_type:
        return Bundle[item].model_validate_json(body).items  # type: ignore[valid-type]
    return [item.model_validate_json(body)]


def derived_id(parent: uuid.UUID | str, *parts: str) -> uuid.UUID:
    """A stable id for the n-th thing caused by one event (`parent`: its id, or the
    text of it, as an `OutboundMessage` holds it): the same on every redelivery."""
    namespace = parent if isinstance(parent, uuid.UUID) else uuid.UUID(parent)
    return uuid.uuid5(namespace, "/".join(parts))
