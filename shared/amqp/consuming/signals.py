"""What a handler raises to tell the consumer more than "it failed"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PoisonMessage(Exception):
    """A message that can never succeed: park it at once instead of retrying."""


class Unfinished(Exception):
    """The handler made the outcome of some items durable, but not of `remaining`
    (raised from the error that stopped them): those go on as messages of their own,
    when the consumer's codec can re-send an item alone."""

    def __init__(self, remaining: Sequence[Any]) -> None:
        super().__init__(f"{len(remaining)} item(s) not handled")
        self.remaining = remaining
