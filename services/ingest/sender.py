"""Who speaks: the partner an inbound message acts for, and where its receipt goes.

A partner's own system is named by the AMQP ``user_id`` (its broker login). The web
portal has a login of its own and acts for one partner on channel "portal" per
message, named in header ``x-vi-on-behalf-of``, with the portal user in
``x-vi-actor`` (contract §9). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.errors import NOT_A_PARTNER_ANY_MORE, ErrorItem
from shared.contract.portal import (
    ACTOR_HEADER,
    MAX_ACTOR_CHARS,
    NO_ACTOR,
    NO_PORTAL_PARTNER,
    NOT_THE_PORTAL,
    ON_BEHALF_OF_HEADER,
)
from shared.region.model import PORTAL_ID, Channel, Partner, RegionConfig


@dataclass(frozen=True)
class Sender:
    # The id whose partner.<id> queue gets the answer; the inbox remembers the
    # message_id under it. The portal acting for nobody is answered in its own mailbox.
    answer_to: str
    # The partner the message acts for; None when the portal named none (refused).
    partner: Partner | None
    # The portal user who acted (x-vi-actor); None for a partner's own system.
    portal_user: str | None = None
    # Why the sender may not send this (the answer is `not_authorized`); None: it may.
    refusal: ErrorItem | None = None
    # Published with the portal's login (said in the logs, for the operators).
    via_portal: bool = False


def identify(
    user_id: str | None, headers: Mapping[str, Any], region: RegionConfig
) -> Sender | None:
    """The sender of a message, or None when nobody can be answered (no or unknown
    ``user_id``: the message goes to ``vi.rejected``)."""
    if not user_id:
        return None
    if region.portal is not None and user_id == region.portal.broker_user:
        return _portal(headers, region)
    partner = region.partners_by_broker_user.get(user_id)
    if partner is None:
        return None
    if ON_BEHALF_OF_HEADER in headers:
        return Sender(partner.id, partner, refusal=NOT_THE_PORTAL)
    return Sender(partner.id, partner, refusal=_retired(partner))


def _portal(headers: Mapping[str, Any], region: RegionConfig) -> Sender:
    named = _text(headers.get(ON_BEHALF_OF_HEADER))
    partner = region.partners_by_id.get(named) if named is not None else None
    if partner is None or partner.channel is not Channel.PORTAL:
        return Sender(PORTAL_ID, None, refusal=NO_PORTAL_PARTNER, via_portal=True)
    actor = _text(headers.get(ACTOR_HEADER))
    if actor is None or len(actor) > MAX_ACTOR_CHARS or not actor.isprintable():
        return Sender(partner.id, partner, refusal=NO_ACTOR, via_portal=True)
    return Sender(
        partner.id, partner, portal_user=actor, refusal=_retired(partner), via_portal=True
    )


def _retired(partner: Partner) -> ErrorItem | None:
    return NOT_A_PARTNER_ANY_MORE if partner.retired else None


def _text(value: Any) -> str | None:
    """A header's value as text: AMQP tables carry strings as str or as bytes."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) and value else None
