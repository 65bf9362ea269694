"""The consumer runtime: manual acks, bounded prefetch, batches, retry with backoff,
parking.

A consumer hands its handler *items*: what its codec decodes the deliveries to (the
commands of a command bundle, the events of a notify message, or the deliveries
themselves). A handler that returns normally has made its outcome durable; the
deliveries are acked. A handler that raises is retried through the work queue's
delay queues (the attempt count travels in a header); after the last delay the
message is parked whole, with the error in its headers, for an operator to replay. If
even that publish fails the message is requeued, and the quorum queue's delivery limit
parks it as a last resort.

Messages that arrive while earlier ones are being handled are handed over together, as
one *batch* (one database transaction for many messages instead of one each). A failed
batch is split in one place (`handling`): a batch of several deliveries is handled
again delivery by delivery, so one bad message never takes its neighbours with it; a
single delivery of several items, when the codec can re-send an item alone, goes on as
one message per item (nothing of it was committed), each to be retried or parked alone.

A consumer may be told when the broker has *confirmed* the ack of deliveries it handled
successfully (`on_acked`, see `acks`). Ingest uses this to know that a publish can no
longer be delivered (see `shared.db.arrivals`).

The parts: `delivery` (a received message and which of its headers to trust),
`codec` (deliveries to items), `acks`, `failures` (retry, park, split), `handling`
(a batch through the handler), `batches` (gathering deliveries into batches) and
`consumer` (the subscription and its supervision).
"""

from shared.amqp.consuming.acks import AckedHook, Acks
from shared.amqp.consuming.codec import DELIVERIES, BatchHandler, Codec, bundles
from shared.amqp.consuming.consumer import Consumer, ConsumerSettings
from shared.amqp.consuming.delivery import (
    ATTEMPT_HEADER,
    ERROR_HEADER,
    NO_MESSAGE_ID_HEADER,
    QUEUE_HEADER,
    REPLAYED_HEADER,
    ROUTING_KEY_HEADER,
    RUNTIME_HEADERS,
    USER_ID_HEADER,
    Binding,
    Delivery,
)
from shared.amqp.consuming.failures import Failures
from shared.amqp.consuming.handling import OutcomeHook
from shared.amqp.consuming.signals import PoisonMessage, Unfinished

__all__ = [
    "ATTEMPT_HEADER",
    "DELIVERIES",
    "ERROR_HEADER",
    "NO_MESSAGE_ID_HEADER",
    "QUEUE_HEADER",
    "REPLAYED_HEADER",
    "ROUTING_KEY_HEADER",
    "RUNTIME_HEADERS",
    "USER_ID_HEADER",
    "AckedHook",
    "Acks",
    "BatchHandler",
    "Binding",
    "Codec",
    "Consumer",
    "ConsumerSettings",
    "Delivery",
    "Failures",
    "OutcomeHook",
    "PoisonMessage",
    "Unfinished",
    "bundles",
]
