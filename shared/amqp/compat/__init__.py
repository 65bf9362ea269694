"""Every use of aiormq's and pamqp's internals, behind one gate.

Three things need more than aio-pika's public API:

* messages published together go out in one socket write (`together`), a quarter to
  a fifth of the CPU per message for client and broker (docs/performance.md);
* the consumers ask the channel which consumers the broker still knows
  (`consumer_registered`; ingest's raw consumer, `raw`, on aiormq's channel:
  `consumer_on`);
* frames a partner's odd client puts on the wire decode without dropping the
  connection (`wire`);
* the partner clients of the tests and the chaos run send a message without a
  message_id, which aiormq otherwise always fills in (`WithoutMessageId`; test
  tooling only, so it has no fallback).

Each relies on internals that a new aiormq or pamqp release may change silently. So
the installed versions are checked once, at import, against the versions these parts
were written and tested for (`KNOWN`). On any other version everything falls back to
the public API: one publish call per message, a consumer taken as registered while
its channel is open, pamqp's own (strict) decoding; `report_fallback` logs one line
saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Final, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel
from pamqp import commands as spec

from shared.logs import get_logger

if TYPE_CHECKING:
    from shared.outgoing import OutboundMessage

log = get_logger(__name__)

# Messages written per socket write: a bound on one frame buffer and one lock hold.
WRITE_CHUNK: Final = 128

# Distribution -> the version prefixes (major.minor) the internals were written for.
KNOWN: Final[Mapping[str, tuple[str, ...]]] = {"aiormq": ("7.2.",), "pamqp": ("4.0.",)}


def installed_versions() -> dict[str, str]:
    found = {}
    for name in KNOWN:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def unknown_versions(installed: Mapping[str, str]) -> dict[str, str]:
    """The installed versions these internals were not written for (empty: all known)."""
    return {
        name: found
        for name, found in installed.items()
        if not found.startswith(KNOWN.get(name, ("\0",)))
    }


INSTALLED: Final = installed_versions()
# True: use the internals. Decided once, at import; a test may set it to False.
INTERNALS: bool = not unknown_versions(INSTALLED)
_reported = False


def report_fallback() -> None:
    """Log, once per process, that the public API is used (nothing when it is not)."""
    global _reported
    if INTERNALS or _reported:
        return
    _reported = True
    log.warning(
        "amqp_internals_unknown_version_using_public_api",
        installed=INSTALLED,
        known={name: list(prefixes) for name, prefixes in KNOWN.items()},
        effect="one publish call per message; strict frame decoding; "
        "a consumer cancelled by the broker is not noticed",
    )


def install_wire() -> None:
    """Tolerant frame decoding (see `wire`), on the pamqp versions it was written for."""
    if INTERNALS:
        from shared.amqp.compat import wire

        wire.install()
    else:
        report_fallback()


async def publish_confirmed(
    channel: AbstractChannel, messages: Sequence[OutboundMessage]
) -> list[Any | BaseException]:
    """Publish `messages` in order on a confirming channel and wait for every
    confirmation; each outcome is the confirmation or the exception it ended in."""
    if INTERNALS:
        from shared.amqp.compat import together

        confirmations = await together.publish(channel, messages)
    else:
        report_fallback()
        confirmations = [asyncio.ensure_future(_publish_one(channel, m)) for m in messages]
    return list(await asyncio.gather(*confirmations, return_exceptions=True))


async def _publish_one(channel: AbstractChannel, message: OutboundMessage) -> Any:
    exchange = (
        channel.default_exchange
        if message.exchange == ""
        else await channel.get_exchange(message.exchange, ensure=False)
    )
    return await exchange.publish(
        aio_pika.Message(
            message.body,
            headers=dict(message.headers or {}),
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.wire_id,
            correlation_id=message.correlation_id,
            type=message.message_type,
            user_id=message.user_id,
            app_id=message.app_id,
            timestamp=message.timestamp,
        ),
        message.routing_key,
        mandatory=True,
    )


async def consumer_registered(channel: AbstractChannel, consumer_tag: str) -> bool:
    """True when the broker still knows the consumer `consumer_tag` on `channel`."""
    underlay = await asyncio.wait_for(channel.get_underlay_channel(), 1.0)
    return consumer_on(underlay, consumer_tag)


def consumer_on(underlay: aiormq.abc.AbstractChannel, consumer_tag: str) -> bool:
    """True when the broker still knows the consumer `consumer_tag` on aiormq's
    channel `underlay` (without internals: while the channel is open)."""
    if INTERNALS:
        return consumer_tag in cast(aiormq.Channel, underlay).consumers
    report_fallback()
    return not underlay.is_closed


def properties(message: OutboundMessage) -> spec.Basic.Properties:
    """The AMQP properties of `message`: persistent, with its message_id."""
    return spec.Basic.Properties(
        app_id=message.app_id,
        content_encoding=message.content_encoding,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        headers=dict(message.headers or {}),
        message_id=message.wire_id,
        message_type=message.message_type,
        timestamp=message.timestamp,
        user_id=message.user_id,
    )


class WithoutMessageId(spec.Basic.Properties):
    """Properties sent without a message_id. aiormq fills in a random message_id
    when there is none, so the id is left out only when the frame is encoded."""

    def marshal(self) -> bytes:
        self.message_id = None
        return super().marshal()
