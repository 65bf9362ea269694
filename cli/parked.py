"""`verwijsindex parked ...` and `verwijsindex rejected ...`: the holding queues.

Reading, replaying and purging all go through the queue once with
`shared.amqp.inspect.pass_through`, which never gives a message back to the broker (a
give-back would spend its delivery budget). Every replay and purge is written to the
audit log, before the message is replayed or removed.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import click
from aio_pika.abc import AbstractRobustConnection

from cli.common import run, settings
from cli.output import emit_json, table
from services.ingest.sender import identify
from shared.amqp.connection import connect_broker
from shared.amqp.inspect import HeldMessage, Progress, Visit, depth, pass_through, replay
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INGEST_QUEUE, REJECTED_QUEUE, WORK_QUEUES, parked_queue
from shared.db.journal import Journal
from shared.service import Runtime

# Below this many messages a pass is quick and a progress bar only clutters.
PROGRESS_FROM = 100

# What to do with a selected message: None when done, else why it stays.
Act = Callable[[Runtime, str, HeldMessage], Awaitable[str | None]]


def _queues(queue: str | None) -> list[str]:
    if queue is None:
        return sorted(WORK_QUEUES)
    if queue not in WORK_QUEUES:
        raise click.BadParameter(f"choose one of {', '.join(sorted(WORK_QUEUES))}")
    return [queue]


def _operator_option(func: Any) -> Any:
    return click.option(
        "--operator",
        default=getpass.getuser,
        show_default="your login",
        help="Who does this (written to the audit log).",
    )(func)


@contextmanager
def _progress(length: int, label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr for a long pass (stdout stays clean for --json)."""
    if length < PROGRESS_FROM:
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@dataclass(frozen=True)
class _Broker:
    connection: AbstractRobustConnection
    publisher: Publisher
    service_user: str

    async def go_through(self, queue: str, visit: Visit, label: str) -> None:
        length = await depth(self.connection, queue)
        with _progress(length, f"{label} {queue}") as progress:
            await pass_through(
                self.connection,
                self.publisher,
                queue,
                visit,
                service_user=self.service_user,
                progress=progress,
            )


@asynccontextmanager
async def _looking() -> AsyncIterator[_Broker]:
    """The broker only: looking works while the database is down."""
    s = settings()
    connection = await connect_broker(s, "verwijsindex-cli")
    publisher = Publisher(connection)
    try:
        await publisher.start()
        yield _Broker(connection, publisher, s.service_broker_user)
    finally:
        await publisher.close()
        await connection.close()


async def _list(queue_names: list[str], limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with _looking() as broker:
        for name in queue_names:
            found.extend(await _read(broker, name, limit))
    return found


async def _read(broker: _Broker, queue: str, limit: int) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []

    async def look(held: HeldMessage) -> bool:
        if len(listed) < limit:
            listed.append({"from": queue, **held.summary()})
        return False

    await broker.go_through(queue, look, "reading")
    return listed


async def _show(queue_names: list[str], message_id: str) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = []
    async with _looking() as broker:
        for name in queue_names:

            async def look(held: HeldMessage, name: str = name) -> bool:
                if not found and held.message_id == message_id:
                    found.append(_detail(name, held))
                return False

            await broker.go_through(name, look, "reading")
            if found:
                return found[0]
    return None


def _detail(queue: str, held: HeldMessage) -> dict[str, Any]:
    try:
        body: Any = json.loads(held.message.body)
    except ValueError:
        body = held.message.body.decode("utf-8", "replace")
    return {"from": queue, **held.summary(), "headers": held.headers, "body": body}


@dataclass
class _Outcome:
    done: list[str] = field(default_factory=list)
    # Selected but left in place, with the reason.
    kept: dict[str, str] = field(default_factory=dict)


async def _act_on(
    queue_names: list[str], ids: set[str], everything: bool, act: Act, label: str
) -> _Outcome:
    """Go through the queues once; `act` on each selected message."""
    outcome = _Outcome()
    s = settings()
    runtime = await Runtime.open("verwijsindex-cli", s)
    broker = _Broker(runtime.connection, runtime.publisher, s.service_broker_user)
    try:
        for name in queue_names:

            async def visit(held: HeldMessage, name: str = name) -> bool:
                message_id = str(held.message_id)
                if not (everything or message_id in ids):
                    return False
                reason = await act(runtime, name, held)
                if reason is not None:
                    outcome.kept[message_id] = reason
                    return False
                outcome.done.append(message_id)
                return True

            await broker.go_through(name, visit, label)
    finally:
        await runtime.close()
    return outcome


async def _audit(
    runtime: Runtime, action: str, operator: str, queue: str, held: HeldMessage
) -> None:
    journal = Journal()
    journal.audit(
        action,
        operator,
        detail={
            "queue": queue,
            "message_id": held.message_id,
            "sender": held.sender,
            "type": held.kind,
        },
    )
    async with runtime.pool.acquire() as conn:
        await journal.write(conn)


def _report(outcome: _Outcome, verb: str, wanted: tuple[str, ...], where: str) -> None:
    click.echo(f"{verb} {len(outcome.done)} message(s)")
    for message_id, reason in sorted(outcome.kept.items()):
        click.echo(f"left in place {message_id}: {reason}")
    missing = set(wanted) - set(outcome.done) - set(outcome.kept)
    if missing:
        raise click.ClickException(f"not found among {where}: {', '.join(sorted(missing))}")
    if outcome.kept:
        raise click.exceptions.Exit(1)


def _need_selection(message_ids: tuple[str, ...], everything: bool, verb: str) -> None:
    if not message_ids and not everything:
        raise click.UsageError(f"name the message ids to {verb}, or pass --all")


def _print_list(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(items)
        return
    if not items:
        click.echo("nothing here")
        return
    click.echo(
        table(
            ["queue", "message_id", "type", "sender", "attempts", "error"],
            [
                [
                    i["from"],
                    i["message_id"],
                    i["type"],
                    i["sender"] or "(no user_id)",
                    i["attempts"],
                    (i["error"] or "")[:60],
                ]
                for i in items
            ],
        )
    )


# -- parked ---------------------------------------------------------------------------


@click.group()
def parked() -> None:
    """Messages that failed for a technical reason after all retries."""


@parked.command("list")
@click.option("--queue", help="Only this work queue (e.g. vi.matcher).")
@click.option("--limit", default=100, show_default=True, help="At most this many per queue.")
@click.option("--json", "as_json", is_flag=True)
def parked_list(queue: str | None, limit: int, as_json: bool) -> None:
    """List parked messages with the reason each failed.

    `sender` is the partner's broker login, as the broker checked it."""
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


@parked.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every parked message.")
@click.option("--queue", help="Only this work queue (e.g. vi.matcher).")
@_operator_option
def parked_replay(
    message_ids: tuple[str, ...], everything: bool, queue: str | None, operator: str
) -> None:
    """Put parked messages back on their work queue, once the cause is fixed (audited).

    A replayed message that had already taken effect does not take effect again.
    """
    _need_selection(message_ids, everything, "replay")
    work_queues = _queues(queue)

    async def to_work_queue(runtime: Runtime, parked: str, held: HeldMessage) -> None:
        await _audit(runtime, "parked_replayed", operator, parked, held)
        work_queue = parked.removesuffix(".parked")
        await replay(runtime.publisher, held, work_queue=work_queue)

    parked_names = [parked_queue(q) for q in work_queues]
    done = run(_act_on(parked_names, set(message_ids), everything, to_work_queue, "replaying"))
    _report(done, "replayed", message_ids, "parked messages")


# -- rejected -------------------------------------------------------------------------


@click.group()
def rejected() -> None:
    """Inbound messages from unknown senders (no or unknown user_id), kept whole."""


@rejected.command("list")
@click.option("--limit", default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True)
def rejected_list(limit: int, as_json: bool) -> None:
    """List rejected messages with the reason.

    `sender` is the `user_id` the message was published with, which the broker checked
    against the publishing login; "(no user_id)" means it carried none, and then the
    broker does not tell who published it."""
    _print_list(run(_list([REJECTED_QUEUE], limit)), as_json)


@rejected.command("show")
@click.argument("message_id")
def rejected_show(message_id: str) -> None:
    """Show one rejected message whole."""
    doc = run(_show([REJECTED_QUEUE], message_id))
    if doc is None:
        raise click.ClickException(f"no rejected message with message_id {message_id}")
    emit_json(doc)


@rejected.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every rejected message.")
@_operator_option
def rejected_replay(message_ids: tuple[str, ...], everything: bool, operator: str) -> None:
    """Hand rejected messages to ingest again (audited).

    For messages whose sender has become a partner (or the portal) since, typically
    a login that was created before its partner was in the region config (run
    `verwijsindex region apply FILE` first). Each message goes to ingest with its original sender,
    routing key, message_id and body, and the partner gets its receipt. A message
    without user_id, or whose sender is still not a partner, is left in place
    (exit code 1).
    """
    _need_selection(message_ids, everything, "replay")

    async def to_ingest(runtime: Runtime, queue: str, held: HeldMessage) -> str | None:
        region = await runtime.region.get()
        if held.sender is None:
            return "it has no user_id, so nobody can be answered: purge it"
        if identify(held.sender, held.headers, region) is None:
            return (
                f"{held.sender!r} is still not a partner of this region "
                "(add it, then `verwijsindex region apply FILE`)"
            )
        await _audit(runtime, "rejected_replayed", operator, queue, held)
        # The broker lets no other login publish with the partner's user_id, so the
        # copy goes straight to ingest's queue under the services' login, naming the
        # partner in the runtime's header; ingest trusts that header only on messages
        # published with the services' login.
        await replay(runtime.publisher, held, work_queue=INGEST_QUEUE)
        return None

    done = run(_act_on([REJECTED_QUEUE], set(message_ids), everything, to_ingest, "replaying"))
    _report(done, "replayed", message_ids, "rejected messages")


@rejected.command("purge")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every rejected message.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_operator_option
def rejected_purge(
    message_ids: tuple[str, ...], everything: bool, yes: bool, operator: str
) -> None:
    """Remove rejected messages for good (audited).

    One audit entry per message, written before it is removed."""
    _need_selection(message_ids, everything, "purge")
    if not yes:
        what = "every message" if everything else f"{len(message_ids)} message(s)"
        click.confirm(f"Remove {what} from {REJECTED_QUEUE} for good?", abort=True)

    async def remove(runtime: Runtime, queue: str, held: HeldMessage) -> None:
        await _audit(runtime, "rejected_purged", operator, queue, held)

    done = run(_act_on([REJECTED_QUEUE], set(message_ids), everything, remove, "purging"))
    _report(done, "purged", message_ids, "rejected messages")
