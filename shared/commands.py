"""The messages that hand validated commands to the matcher (ingest forwards them; the
matcher's consumer re-sends the commands of a bundle it had to split)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY
from shared.envelopes import COMMAND_BUNDLE_TYPE, Command, CommandBundle
from shared.lanes import Lane
from shared.outgoing import OutboundMessage


def command_message(command: Command, lane: Lane = Lane.LIVE) -> OutboundMessage:
    """One command as a message of its own, under the partner's message_id."""
    return OutboundMessage(
        INTERNAL_EXCHANGE,
        lane.of(MATCHER_KEY),
        command.model_dump_json().encode(),
        message_type=command.message.type,
        message_id=command.message_id,
        correlation_id=command.message_id,
    )


def commands_message(commands: Sequence[Command], lane: Lane = Lane.LIVE) -> OutboundMessage:
    """Several commands as one `command.batch` bundle (one alone as itself)."""
    if len(commands) == 1:
        return command_message(commands[0], lane)
    return OutboundMessage(
        INTERNAL_EXCHANGE,
        lane.of(MATCHER_KEY),
        CommandBundle(items=list(commands)).model_dump_json().encode(),
        message_type=COMMAND_BUNDLE_TYPE,
        message_id=str(uuid.uuid4()),
    )
