"""Handing validated commands to the matcher (ingest forwards them; the matcher passes
on the commands of a batch it had to split)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.amqp.publisher import Publisher
from shared.amqp.topology import INTERNAL_EXCHANGE, MATCHER_KEY
from shared.envelopes import COMMAND_BATCH_TYPE, Command, CommandBatch
from shared.lanes import Lane


async def send_command(publisher: Publisher, command: Command, lane: Lane = Lane.LIVE) -> None:
    """One command as a message of its own, under the partner's message_id."""
    await publisher.publish(
        INTERNAL_EXCHANGE,
        lane.of(MATCHER_KEY),
        command.model_dump_json().encode(),
        message_id=command.message_id,
        correlation_id=command.message_id,
        message_type=command.message.type,
    )


async def send_commands(
    publisher: Publisher, commands: Sequence[Command], lane: Lane = Lane.LIVE
) -> None:
    """Several commands as one `command.batch` message (one alone as itself)."""
    if len(commands) == 1:
        await send_command(publisher, commands[0], lane)
    elif commands:
        await publisher.publish(
            INTERNAL_EXCHANGE,
            lane.of(MATCHER_KEY),
            CommandBatch(items=list(commands)).model_dump_json().encode(),
            message_id=str(uuid.uuid4()),
            message_type=COMMAND_BATCH_TYPE,
        )
