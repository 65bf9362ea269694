"""The age of a queue's oldest message, from the broker's history of its length."""

from __future__ import annotations

from typing import Any

from shared.amqp.queue_age import HeldFor, held_for

NOW = 1_000_000.0


def _queue(*lengths: int, step: int = 5) -> dict[str, Any]:
    """A queue document with samples newest first, the newest at NOW."""
    samples = [
        {"sample": n, "timestamp": int((NOW - i * step) * 1000)} for i, n in enumerate(lengths)
    ]
    return {"messages_details": {"samples": samples}}


def test_the_age_is_the_time_since_the_queue_was_last_empty() -> None:
    assert held_for(_queue(3, 3, 1, 0, 0, 2), NOW) == HeldFor(15.0, at_least=False)


def test_messages_that_arrived_after_the_last_sample_are_seconds_old() -> None:
    assert held_for(_queue(0, 0, 0), NOW + 2) == HeldFor(2.0, at_least=False)


def test_a_queue_never_empty_in_its_history_is_at_least_that_old() -> None:
    assert held_for(_queue(4, 4, 4, 4), NOW) == HeldFor(15.0, at_least=True)


def test_a_sample_stamped_ahead_of_our_clock_gives_no_negative_age() -> None:
    assert held_for(_queue(0), NOW - 1) == HeldFor(0.0, at_least=False)


def test_no_samples_yet_gives_no_age() -> None:
    assert held_for({"messages_details": {"samples": []}}, NOW) is None
    assert held_for({}, NOW) is None


def test_samples_in_any_order() -> None:
    doc = _queue(2, 2, 0, 1)
    doc["messages_details"]["samples"].reverse()
    assert held_for(doc, NOW) == HeldFor(10.0, at_least=False)
