"""Batches on the wire: notify events leave as few messages, nothing else changes on
the way, and a batch is acked with one frame only when that acks nothing else."""

from __future__ import annotations

import uuid

from shared.amqp.consuming.acks import multiple_ack_tag
from shared.announce import merge_notify_messages, notify_message
from shared.envelopes import (
    ITEMS_PER_MESSAGE,
    NOTIFY_BUNDLE_TYPE,
    NOTIFY_TYPE,
    NotifyBundle,
    NotifyEvent,
    PartnerNotice,
    unpack,
)
from shared.outgoing import OutboundMessage
from shared.receipts import accepted


def event(n: int) -> NotifyEvent:
    return NotifyEvent(
        event_id=uuid.UUID(int=n),
        notices=[
            PartnerNotice(
                partner_id="school",
                message_id=uuid.UUID(int=1000 + n),
                message_type="match.notice",
                body={"n": n},
            )
        ],
    )


def test_one_event_stays_as_it_was() -> None:
    messages = [accepted("school", "m-1", "S-1", receipt_id=uuid.uuid4()), notify_message(event(1))]
    assert merge_notify_messages(messages) == messages


def test_events_become_one_batch_in_the_place_of_the_first() -> None:
    receipts = [accepted("school", f"m-{n}", f"S-{n}", receipt_id=uuid.uuid4()) for n in range(3)]
    events = [event(n) for n in range(3)]
    messages: list[OutboundMessage] = [
        receipts[0],
        notify_message(events[0]),
        receipts[1],
        notify_message(events[1]),
        notify_message(events[2]),
        receipts[2],
    ]
    merged = merge_notify_messages(messages)
    assert [m.message_type for m in merged] == ["receipt", NOTIFY_BUNDLE_TYPE, "receipt", "receipt"]
    assert [merged[0], merged[2], merged[3]] == receipts
    assert NotifyBundle.model_validate_json(merged[1].body).items == events
    # The same events always give the same message id (a re-run is a duplicate).
    again = merge_notify_messages([notify_message(e) for e in events])
    assert again[0].message_id == merged[1].message_id
    other = merge_notify_messages([notify_message(e) for e in reversed(events)])
    assert other[0].message_id != merged[1].message_id


def test_a_batch_is_acked_with_one_multiple_ack_only_when_nothing_else_lies_below() -> None:
    assert multiple_ack_tag({3, 1, 2}, unsettled={1, 2, 3, 7, 8}) == 3
    # Tag 2 belongs to a message still being handled (or retried): one ack each.
    assert multiple_ack_tag({1, 3}, unsettled={1, 2, 3}) is None
    assert multiple_ack_tag({5, 6}, unsettled={4, 5, 6}) is None
    assert multiple_ack_tag({5, 6}, unsettled={5, 6, 9}) == 6
    assert multiple_ack_tag(set(), unsettled={1}) is None


def test_many_events_travel_in_messages_of_a_bounded_size() -> None:
    events = [event(n) for n in range(2 * ITEMS_PER_MESSAGE + 1)]
    merged = merge_notify_messages([notify_message(e) for e in events])
    # The last one, alone, stays a plain notify event.
    assert [m.message_type for m in merged] == [NOTIFY_BUNDLE_TYPE, NOTIFY_BUNDLE_TYPE, NOTIFY_TYPE]
    unpacked = [
        item
        for m in merged
        for item in unpack(m.body, m.message_type, NOTIFY_BUNDLE_TYPE, NotifyEvent)
    ]
    assert unpacked == events
    assert len({m.message_id for m in merged}) == 3
