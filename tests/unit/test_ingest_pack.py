"""Packs of beyond-share messages, without I/O: what a pack keeps of a partner's
message, and how its copies speak for the partner."""

from __future__ import annotations

import uuid

import pytest

from services.ingest.pack import BadPack, PackedMessage, pack, unpack
from services.ingest.sender import identify
from shared.amqp.consuming import (
    NO_MESSAGE_ID_HEADER,
    ROUTING_KEY_HEADER,
    USER_ID_HEADER,
    Binding,
)
from shared.contract.portal import ACTOR_HEADER, NOT_THE_PORTAL, ON_BEHALF_OF_HEADER
from shared.region.model import parse_region
from tests.support import region_document

SERVICE = "vi-services"


def _message(**overrides: object) -> PackedMessage:
    fields: dict[str, object] = {
        "user_id": "jgz-user",
        "message_id": "m-1",
        "routing_key": "melding.register",
        "correlation_id": "c-1",
        "body": b'{"a": 1}',
        "headers": {},
        "seen_before": False,
        "binding": Binding(uuid.uuid4()),
        "service_user": SERVICE,
    }
    fields.update(overrides)
    return PackedMessage(**fields)  # type: ignore[arg-type]


def test_a_pack_keeps_its_messages_in_order_with_their_arrivals() -> None:
    first = _message(body=b"\xff\x00 not utf-8", message_id="m-1")
    second = _message(message_id=None, binding=Binding(None), seen_before=True)
    [a, b] = unpack(pack([first, second]), service_user=SERVICE, seen_before=False)
    assert (a.body, a.message_id, a.binding.arrival_id) == (
        first.body,
        "m-1",
        first.binding.arrival_id,
    )
    assert (a.user_id, a.routing_key, a.correlation_id) == ("jgz-user", "melding.register", "c-1")
    assert not a.seen_before
    assert (b.message_id, b.binding.arrival_id, b.seen_before) == (None, None, True)


def test_a_redelivered_pack_makes_each_of_its_messages_seen_before() -> None:
    [m] = unpack(pack([_message()]), service_user=SERVICE, seen_before=True)
    assert m.seen_before


def test_a_pack_keeps_the_headers_that_decide_who_speaks_and_only_those() -> None:
    headers = {ON_BEHALF_OF_HEADER: b"de-linde", ACTOR_HEADER: 7, "x-other": "dropped"}
    [m] = unpack(pack([_message(headers=headers)]), service_user=SERVICE, seen_before=False)
    assert m.headers == {ON_BEHALF_OF_HEADER: "de-linde", ACTOR_HEADER: ""}


def test_a_partner_using_the_portal_headers_is_still_refused_after_packing() -> None:
    region = parse_region(region_document("t"))
    partner = next(p for p in region.partner if p.broker_user is not None)
    original = _message(user_id=partner.broker_user, headers={ON_BEHALF_OF_HEADER: b"\xff"})
    [m] = unpack(pack([original]), service_user=SERVICE, seen_before=False)
    sender = identify(m.user_id, m.headers, region)
    assert sender is not None and sender.refusal == NOT_THE_PORTAL


def test_the_runtime_copy_of_a_packed_message_speaks_for_its_partner() -> None:
    copy = _message(message_id=None).copy_for_runtime("vi.rejected", {"x-vi-error": "why"})
    assert copy.user_id == SERVICE
    # An invented id (every published message gets one), flagged as such.
    assert copy.message_id and copy.message_id != _message().message_id
    headers = dict(copy.headers or {})
    assert headers[USER_ID_HEADER] == "jgz-user"
    assert headers[ROUTING_KEY_HEADER] == "melding.register"
    assert headers[NO_MESSAGE_ID_HEADER] is True
    assert headers["x-vi-error"] == "why"
    assert copy.body == b'{"a": 1}'


@pytest.mark.parametrize("body", [b"not json", b'[{"u": "x"}]', b'[{"b": "***"}]', b"{}"])
def test_an_unreadable_pack_is_refused(body: bytes) -> None:
    with pytest.raises(BadPack):
        unpack(body, service_user=SERVICE, seen_before=False)
