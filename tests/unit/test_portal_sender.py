"""Who speaks (services/ingest/sender.py): a partner's own login, or the portal's login
acting for a partner on channel "portal" (contract §9), and where the answer goes."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.sender import Sender, identify
from shared.contract.errors import NOT_A_PARTNER_ANY_MORE
from shared.contract.portal import (
    ACTOR_HEADER,
    COORDINATOR_FOR_A_PARTNER,
    COORDINATOR_HEADER,
    NO_ACTOR,
    NO_COORDINATOR,
    NO_PORTAL_PARTNER,
    NOT_THE_PORTAL,
    NOT_THE_PORTAL_COORDINATOR,
    ON_BEHALF_OF_HEADER,
)
from shared.region.model import PORTAL_ID, RegionConfig, parse_region
from tests.support import region_document


def _region(*, retired: bool = False) -> RegionConfig:
    doc = region_document("t")
    doc["partner"].append(
        {
            "id": "linde",
            "name": "Basisschool De Linde",
            "sector": "onderwijs",
            "roles": ["reporter"],
            "channel": "portal",
            "retired": retired,
        }
    )
    doc["portal"] = {"broker_user": "t-portal"}
    return parse_region(doc)


REGION = _region()


def _portal(headers: dict[str, Any]) -> Sender | None:
    return identify("t-portal", headers, REGION)


def test_a_partners_own_login_speaks_for_it() -> None:
    sender = identify("t-school", {}, REGION)
    assert sender == Sender("school", REGION.partners_by_id["school"])


def test_unknown_or_missing_logins_cannot_be_answered() -> None:
    assert identify(None, {}, REGION) is None
    assert identify("", {}, REGION) is None
    assert identify("someone", {ON_BEHALF_OF_HEADER: "linde"}, REGION) is None
    # Without a [portal] section the portal's login is nobody.
    assert (
        identify("t-portal", {ON_BEHALF_OF_HEADER: "linde"}, parse_region(region_document("t")))
        is None
    )


def test_the_portal_acts_for_a_portal_partner_and_names_the_actor() -> None:
    sender = _portal({ON_BEHALF_OF_HEADER: "linde", ACTOR_HEADER: "u-1"})
    assert sender == Sender(
        "linde", REGION.partners_by_id["linde"], portal_user="u-1", via_portal=True
    )
    as_bytes = _portal({ON_BEHALF_OF_HEADER: b"linde", ACTOR_HEADER: b"u-1"})
    assert as_bytes == sender


@pytest.mark.parametrize("acts_for", [None, "", "school", "nobody", PORTAL_ID, 7, b"\xff"])
def test_the_portal_without_a_portal_partner_is_refused_into_its_own_mailbox(
    acts_for: Any,
) -> None:
    headers = {ACTOR_HEADER: "u-1"}
    if acts_for is not None:
        headers[ON_BEHALF_OF_HEADER] = acts_for
    assert _portal(headers) == Sender(PORTAL_ID, None, refusal=NO_PORTAL_PARTNER, via_portal=True)


@pytest.mark.parametrize("actor", [None, "", "x" * 129, "a\tb", 12])
def test_the_portal_must_name_a_printable_actor(actor: Any) -> None:
    headers: dict[str, Any] = {ON_BEHALF_OF_HEADER: "linde"}
    if actor is not None:
        headers[ACTOR_HEADER] = actor
    sender = _portal(headers)
    assert sender == Sender(
        "linde", REGION.partners_by_id["linde"], refusal=NO_ACTOR, via_portal=True
    )


def test_a_partner_may_not_use_the_portal_header() -> None:
    sender = identify("t-school", {ON_BEHALF_OF_HEADER: "linde"}, REGION)
    assert sender == Sender("school", REGION.partners_by_id["school"], refusal=NOT_THE_PORTAL)
    # x-vi-actor alone means nothing from a partner's own system: it is ignored.
    assert identify("t-school", {ACTOR_HEADER: "u-1"}, REGION) == Sender(
        "school", REGION.partners_by_id["school"]
    )


def test_a_retired_portal_partner_is_refused_in_its_own_mailbox() -> None:
    region = _region(retired=True)
    sender = identify("t-portal", {ON_BEHALF_OF_HEADER: "linde", ACTOR_HEADER: "u"}, region)
    assert sender is not None
    assert (sender.answer_to, sender.refusal) == ("linde", NOT_A_PARTNER_ANY_MORE)


def test_the_portal_speaks_for_a_coordinator_answered_in_its_own_mailbox() -> None:
    sender = _portal({COORDINATOR_HEADER: "0363", ACTOR_HEADER: "c-1"})
    assert sender == Sender(PORTAL_ID, None, portal_user="c-1", via_portal=True, coordinator="0363")
    assert sender.roles == frozenset({"coordinator"})
    assert _portal({COORDINATOR_HEADER: b"0363", ACTOR_HEADER: b"c-1"}) == sender
    # A portal partner's sender has its partner's roles, not the coordinator's.
    linde = _portal({ON_BEHALF_OF_HEADER: "linde", ACTOR_HEADER: "u-1"})
    assert linde is not None and linde.roles == frozenset({"reporter"})


@pytest.mark.parametrize("code", ["", "363", "03630", "9999", " 0363", "٠٣٦٣", 363, b"\xff"])
def test_a_coordinator_header_that_names_no_municipality_of_the_region(code: Any) -> None:
    sender = _portal({COORDINATOR_HEADER: code, ACTOR_HEADER: "c-1"})
    assert sender == Sender(PORTAL_ID, None, refusal=NO_COORDINATOR, via_portal=True)
    assert sender.roles == frozenset()


def test_a_coordinator_acts_for_no_partner_and_must_name_its_actor() -> None:
    both = {COORDINATOR_HEADER: "0363", ON_BEHALF_OF_HEADER: "linde", ACTOR_HEADER: "c-1"}
    assert _portal(both) == Sender(
        PORTAL_ID, None, refusal=COORDINATOR_FOR_A_PARTNER, via_portal=True
    )
    assert _portal({COORDINATOR_HEADER: "0363"}) == Sender(
        PORTAL_ID, None, refusal=NO_ACTOR, via_portal=True
    )


def test_a_partner_may_not_use_the_coordinator_header() -> None:
    sender = identify("t-school", {COORDINATOR_HEADER: "0363", ACTOR_HEADER: "c-1"}, REGION)
    assert sender == Sender(
        "school", REGION.partners_by_id["school"], refusal=NOT_THE_PORTAL_COORDINATOR
    )
