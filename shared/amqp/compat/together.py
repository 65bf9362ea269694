"""Many publishes in one socket write, through aiormq's channel internals.

aiormq has no public call for this, so :func:`publish` does what its ``basic_publish``
does for one message, for many under one lock. Written for aiormq 7.2 (see
`shared.amqp.compat.KNOWN`); ``tests/integration/test_publisher.py`` checks every
outcome (confirm, return, nack, closed channel, bodies larger than a frame).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiormq
from aio_pika.abc import AbstractChannel
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.header import ContentHeader

from shared.amqp import compat
from shared.amqp.compat import WRITE_CHUNK
from shared.envelopes import chunked

if TYPE_CHECKING:
    from shared.outgoing import OutboundMessage


async def publish(
    channel: AbstractChannel, messages: Sequence[OutboundMessage]
) -> list[asyncio.Future[Any]]:
    """Write the messages in chunks of `WRITE_CHUNK` and return their confirmation
    futures, in order."""
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)
    confirmations: list[asyncio.Future[Any]] = []
    for chunk in chunked(messages, WRITE_CHUNK):
        confirmations += await _write_together(underlay, chunk)
    return confirmations


async def _write_together(
    channel: aiormq.Channel, messages: Sequence[OutboundMessage]
) -> list[asyncio.Future[Any]]:
    """Write the messages' frames in one piece and return their confirmation futures.

    What aiormq's ``basic_publish`` does for one message: under the channel's lock,
    take the next delivery tags, register a confirmation per tag (and the message_id
    a return names), queue the frames, wait until they are written. A failure before
    the frames were queued gives the tags back, so the broker's numbering and ours
    stay the same."""
    frames: list[Any] = []
    confirmations: list[asyncio.Future[Any]] = []
    async with channel._raise_on_channel_close(), channel.lock:
        first_tag = channel.delivery_tag + 1
        try:
            for offset, message in enumerate(messages):
                tag = first_tag + offset
                # A return names its message by id only.
                message_id = message.wire_id
                properties = compat.properties(message)
                confirmation = channel.create_future()
                channel.confirmations[tag] = confirmation
                channel.message_id_delivery_tag[message_id] = tag
                confirmation.add_done_callback(_forget_message_id(channel, message_id, tag))
                confirmations.append(confirmation)
                frames.append(
                    spec.Basic.Publish(
                        exchange=message.exchange,
                        routing_key=message.routing_key,
                        mandatory=True,
                    )
                )
                frames.append(ContentHeader(properties=properties, body_size=len(message.body)))
                frames.extend(channel._split_body(message.body))
            channel.delivery_tag = first_tag + len(messages) - 1
            drained = channel.create_future()
            payload = ChannelFrame.marshall(
                frames=frames, channel_number=channel.number, drain_future=drained
            )
            await channel.write_queue.put(payload)
        except BaseException:
            # Nothing reached the broker: give the tags back.
            channel.delivery_tag = first_tag - 1
            for offset, confirmation in enumerate(confirmations):
                channel.confirmations.pop(first_tag + offset, None)
                confirmation.cancel()
            raise
        await drained
    return confirmations


def _forget_message_id(channel: aiormq.Channel, message_id: str, tag: int) -> Any:
    def forget(_: asyncio.Future[Any]) -> None:
        if channel.message_id_delivery_tag.get(message_id) == tag:
            channel.message_id_delivery_tag.pop(message_id)

    return forget
