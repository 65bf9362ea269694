"""How a consumer reads its messages: deliveries decoded to the items its handler
takes, before the handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import pydantic

from shared.amqp.consuming.delivery import Delivery
from shared.amqp.consuming.signals import PoisonMessage
from shared.envelopes import unpack
from shared.outgoing import OutboundMessage

Item = TypeVar("Item")
Model = TypeVar("Model", bound=pydantic.BaseModel)

# Takes a batch's items, in the order of their deliveries.
BatchHandler = Callable[[Sequence[Item]], Awaitable[None]]


@dataclass(frozen=True)
class Codec(Generic[Item]):
    # The items a delivery carries; raises PoisonMessage for one that cannot be read.
    decode: Callable[[Delivery], Sequence[Item]]
    # The message that carries one item alone: given, a failed message of several
    # items goes on as one message per item (see `handling`); None: it is retried whole.
    resend: Callable[[Item], OutboundMessage] | None = None


def _as_is(delivery: Delivery) -> Sequence[Delivery]:
    return [delivery]


# The deliveries themselves (ingest reads a partner's message as it came).
DELIVERIES: Codec[Delivery] = Codec(_as_is)


def bundles(bundle_type: str, item: type[Model], what: str) -> Codec[Model]:
    """Internal messages of one kind, alone or in bundles (`shared.envelopes`);
    `what` names one in the error of a message that is neither."""

    def decode(delivery: Delivery) -> Sequence[Model]:
        try:
            return unpack(delivery.body, delivery.message.type, bundle_type, item)
        except pydantic.ValidationError as exc:
            raise PoisonMessage(f"not a valid {what}") from exc

    return Codec(decode)
