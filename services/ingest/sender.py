"""Who speaks: the partner an inbound message acts for, and where its receipt goes.

A partner's own system is named by the AMQP ``user_id`` (its broker login). The web
portal has a login of its own and acts for one partner on channel "portal" per
message, named in header ``x-vi-on-behalf-of``, with the portal user in
``x-vi-actor`` (contract §9). It also speaks for a municipality's match coordinator,
named by the 4-digit code in header ``x-vi-coordinator`` (for ``regie.assign``, the one
message with the coordinator's role); such a message acts for no partner and is
answered in the portal's own mailbox. A code that is not 4 digits or not a
municipality of the region is refused like a missing one: ``not_authorized``, as the
header does not name a coordinator of this region. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contract.errors import NOT_A_PARTNER_ANY_MORE, ErrorItem
from shared.contract.portal import (
    ACTOR_HEADER,
    COORDINATOR_FOR_A_PARTNER,
    COORDINATOR_HEADER,
    MAX_ACTOR_CHARS,
    NO_ACTOR,
    NO_COORDINATOR,
    NO_PORTAL_PARTNER,
    NOT_THE_PORTAL,
    NOT_THE_PORTAL_COORDINATOR,
    ON_BEHALF_OF_HEADER,
)
from shared.contract.validation import COORDINATOR
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
    # The municipality whose match coordinator acts (x-vi-coordinator); None otherwise.
    coordinator: str | None = None

    @property
    def roles(self) -> frozenset[str]:
        """What the sender may send: its partner's roles, or the coordinator's."""
        if self.coordinator is not None:
            return frozenset({COORDINATOR})
        return self.partner.role_names if self.partner is not None else frozenset()


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
    if COORDINATOR_HEADER in headers:
        return Sender(partner.id, partner, refusal=NOT_THE_PORTAL_COORDINATOR)
    return Sender(partner.id, partner, refusal=_retired(partner))


def _portal(headers: Mapping[str, Any], region: RegionConfig) -> Sender:
    if COORDINATOR_HEADER in headers:
        return _coordinator(headers, region)
    named = _text(headers.get(ON_BEHALF_OF_HEADER))
    partner = region.partners_by_id.get(named) if named is not None else None
    if partner is None or partner.channel is not Channel.PORTAL:
        return Sender(PORTAL_ID, None, refusal=NO_PORTAL_PARTNER, via_portal=True)
    actor = _actor(headers)
    if actor is None:
        return Sender(partner.id, partner, refusal=NO_ACTOR, via_portal=True)
    return Sender(
        partner.id, partner, portal_user=actor, refusal=_retired(partner), via_portal=True
    )


def _coordinator(headers: Mapping[str, Any], region: RegionConfig) -> Sender:
    def refused(refusal: ErrorItem) -> Sender:
        return Sender(PORTAL_ID, None, refusal=refusal, via_portal=True)

    if ON_BEHALF_OF_HEADER in headers:
        return refused(COORDINATOR_FOR_A_PARTNER)
    code = _text(headers.get(COORDINATOR_HEADER))
    if code is None or code not in region.municipalities_by_code:
        return refused(NO_COORDINATOR)
    actor = _actor(headers)
    if actor is None:
        return refused(NO_ACTOR)
    return Sender(PORTAL_ID, None, portal_user=actor, via_portal=True, coordinator=code)


def _actor(headers: Mapping[str, Any]) -> str | None:
    """The portal user named in x-vi-actor, or None when it names nobody usable."""
    actor = _text(headers.get(ACTOR_HEADER))
    if actor is None or len(actor) > MAX_ACTOR_CHARS or not actor.isprintable():
        return None
    return actor


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
