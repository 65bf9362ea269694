"""`verwijsindex parked ...` and `verwijsindex rejected ...`"""

from __future__ import annotations

import json
from typing import Any

import click

from cli.common import run, settings
from cli.output import emit_json, table
from shared.amqp.connection import connect_broker
from shared.amqp.inspect import HeldMessage, hold, replay
from shared.amqp.publisher import Publisher
from shared.amqp.topology import REJECTED_QUEUE, WORK_QUEUES, parked_queue

LIMIT = 1000


def _queues(queue: str | None) -> list[str]:
    if queue is None:
        return sorted(WORK_QUEUES)
    if queue not in WORK_QUEUES:
        raise click.BadParameter(f"choose one of {', '.join(sorted(WORK_QUEUES))}")
    return [queue]


async def _list(queue_names: list[str], limit: int) -> list[dict[str, Any]]:
    connection = await connect_broker(settings(), "verwijsindex-cli")
    try:
        found: list[dict[str, Any]] = []
        for name in queue_names:
            channel, held = await hold(connection, name, limit)
            found.extend({"from": name, **m.summary()} for m in held)
            await channel.close()  # gives every message back
        return found
    finally:
        await connection.close()


async def _show(queue_names: list[str], message_id: str) -> dict[str, Any] | None:
    connection = await connect_broker(settings(), "verwijsindex-cli")
    try:
        for name in queue_names:
            channel, held = await hold(connection, name, LIMIT)
            match = next((m for m in held if m.message.message_id == message_id), None)
            doc = _detail(name, match) if match else None
            await channel.close()
            if doc:
                return doc
        return None
    finally:
        await connection.close()


def _detail(queue: str, held: HeldMessage) -> dict[str, Any]:
    try:
        body: Any = json.loads(held.message.body)
    except ValueError:
        body = held.message.body.decode("utf-8", "replace")
    return {"from": queue, **held.summary(), "headers": held.headers, "body": body}


def _print_list(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("nothing here")
        return
    click.echo(
        table(
            ["queue", "message_id", "type", "partner", "attempts", "error"],
            [
                [
                    i["from"],
                    i["message_id"],
                    i["type"],
                    i["partner_user"],
                    i["attempts"],
                    (i["error"] or "")[:60],
                ]
                for i in items
            ],
        )
    )


@click.group()
def parked() -> None:
    """Messages that failed for a technical reason after all retries."""


@parked.command("list")
@click.option("--queue", help="Only this work queue (e.g. vi.matcher).")
@click.option("--limit", default=100, show_default=True, help="At most this many per queue.")
@click.option("--json", "as_json", is_flag=True)
def parked_list(queue: str | None, limit: int, as_json: bool) -> None:
    """List parked messages with the reason each failed."""
    _print_list(run(_list([parked_queue(q) for q in _queues(queue)], limit)), as_json)


@parked.command("show")
@click.argument("message_id")
@click.option("--queue", help="Only look in this work queue's parked messages.")
def parked_show(message_id: str, queue: str | None) -> None:
    """Show one parked message whole: headers (with the error) and body."""
    doc = run(_show([parked_queue(q) for q in _queues(queue)], message_id))
    if doc is None:
        raise click.ClickException(f"no parked message with message_id {message_id}")
    emit_json(doc)


async def _replay(queue_names: list[str], ids: set[str], everything: bool) -> list[str]:
    s = settings()
    connection = await connect_broker(s, "verwijsindex-cli")
    publisher = Publisher(connection)
    await publisher.start()
    replayed = []
    try:
        for work_queue in queue_names:
            channel, held = await hold(connection, parked_queue(work_queue), LIMIT)
            try:
                with click.progressbar(held, label=f"replaying {work_queue}") as bar:
                    for message in bar:
                        if everything or message.message.message_id in ids:
                            await replay(
                                publisher,
                                message,
                                work_queue=work_queue,
                                service_user=s.service_broker_user,
                            )
                            replayed.append(str(message.message.message_id))
            finally:
                await channel.close()
    finally:
        await publisher.close()
        await connection.close()
    return replayed


@parked.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every parked message.")
@click.option("--queue", help="Only this work queue (e.g. vi.matcher).")
def parked_replay(message_ids: tuple[str, ...], everything: bool, queue: str | None) -> None:
    """Put parked messages back on their work queue, once the cause is fixed.

    A replayed message that had already taken effect does not take effect again.
    """
    if not message_ids and not everything:
        raise click.UsageError("name the message ids to replay, or pass --all")
    done = run(_replay(_queues(queue), set(message_ids), everything))
    missing = set(message_ids) - set(done)
    click.echo(f"replayed {len(done)} message(s)")
    if missing:
        raise click.ClickException(f"not found among parked messages: {', '.join(sorted(missing))}")


@click.group()
def rejected() -> None:
    """Inbound messages from unknown senders (no or unknown user_id), kept whole."""


@rejected.command("list")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def rejected_list(limit: int, as_json: bool) -> None:
    """List rejected messages with the reason."""
    _print_list(run(_list([REJECTED_QUEUE], limit)), as_json)


@rejected.command("show")
@click.argument("message_id")
def rejected_show(message_id: str) -> None:
    """Show one rejected message whole."""
    doc = run(_show([REJECTED_QUEUE], message_id))
    if doc is None:
        raise click.ClickException(f"no rejected message with message_id {message_id}")
    emit_json(doc)
