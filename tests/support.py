"""Test support: an isolated region on the real RabbitMQ and PostgreSQL, the services
running in-process against it, and partner clients that log in as partners do."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aio_pika

from services.ingest.handler import IngestHandler
from services.matcher.handler import MatcherHandler, parse_commands
from shared.amqp.consuming import Codec
from shared.amqp.topology import MATCHER_QUEUE
from shared.clock import Clock, utcnow
from shared.contract.validation import example_bsn
from shared.envelopes import Command
from shared.provisioning import with_login
from shared.region.model import RegionConfig
from shared.service import Runtime
from shared.settings import Settings

# The test region and a melding's body live in testing/ (the chaos run sends them too);
# the tests take them from here with the rest of their support.
from testing.documents import region_document as region_document
from testing.documents import register_body as register_body

PARTNER_PASSWORD = "test-partner-secret"


def region_toml(document: dict[str, Any]) -> str:
    """A region document as the TOML file an operator applies (strings, numbers,
    booleans and lists of strings are all a region file holds)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else str(v)

    def table(entries: dict[str, Any]) -> list[str]:
        return [f"{k} = {value(v)}" for k, v in entries.items()]

    lines = ["[region]", *table(document["region"])]
    for key in ("municipality", "partner"):
        for entry in document[key]:
            lines += ["", f"[[{key}]]", *table(entry)]
    return "\n".join(lines) + "\n"


@dataclass
class RegionUnderTest:
    settings: Settings
    vhost: str
    database: str
    region: RegionConfig
    user_prefix: str
    mail_dir: Path

    def partner_url(self, partner_id: str) -> str:
        user = self.region.partners_by_id[partner_id].own_broker_user
        return with_login(
            self.settings.amqp_url, user=user, password=PARTNER_PASSWORD, vhost=self.vhost
        )

    def with_settings(self, **changes: Any) -> RegionUnderTest:
        return replace(self, settings=replace(self.settings, **changes))


valid_bsn = example_bsn


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def http_get(url: str) -> tuple[int, bytes]:
    """Status and body of a GET (in a thread: urllib handles chunked replies)."""

    def get() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - test URLs
                return int(reply.status), bytes(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    return await asyncio.to_thread(get)


async def queue_depth(runtime: Runtime, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue, as the broker sees it now."""
    async with runtime.connection.channel() as channel:
        result = (await channel.declare_queue(queue, passive=True)).declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def queued_messages(runtime: Runtime, queue: str) -> int:
    """Messages ready in `queue` (not those a consumer holds unacked)."""
    return (await queue_depth(runtime, queue))[0]


async def drain(runtime: Runtime, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message that is ready in `queue`."""
    async with runtime.connection.channel() as channel:
        source = await channel.get_queue(queue, ensure=False)
        got = []
        while (message := await source.get(fail=False, no_ack=True)) is not None:
            got.append(message)
        return got


async def no_consumers(runtime: Runtime) -> None:
    """A runtime setup without consumers: it publishes, and its outbox relay runs."""


def mails(region: RegionUnderTest) -> list[EmailMessage]:
    """The e-mails the services wrote as .eml files, oldest name first."""
    found = []
    for path in sorted(region.mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def cli_env(region: RegionUnderTest) -> dict[str, str]:
    s = region.settings
    return {
        "VI_AMQP_URL": s.amqp_url,
        "VI_DATABASE_URL": s.database_url,
        "VI_MANAGEMENT_URL": s.management_url,
        "VI_PSEUDONYM_KEY": s.pseudonym_key,
        "VI_MAIL_DIR": str(s.mail_dir),
        "VI_RETRY_DELAYS_MS": ",".join(str(d) for d in s.retry_delays_ms),
        "VI_DB_POOL_SIZE": str(s.db_pool_size),
        **{
            name: str(path)
            for name, path in (
                ("VI_AMQP_CA_FILE", s.amqp_ca_file),
                ("VI_AMQP_CERT_FILE", s.amqp_cert_file),
                ("VI_AMQP_KEY_FILE", s.amqp_key_file),
            )
            if path is not None
        },
    }


async def run_cli(
    region: RegionUnderTest,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Run `verwijsindex ARGS` against the test region (in a thread: the CLI runs its
    own event loop); `env` overrides settings."""
    from click.testing import CliRunner

    from cli.main import main

    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke,
        main,
        list(args),
        env={**cli_env(region), **(env or {})},
        input=input,
        catch_exceptions=False,
    )


def matcher_of(runtime: Runtime, clock: Clock = utcnow) -> MatcherHandler:
    """The matcher's handler on `runtime`'s database, broker and region."""
    return MatcherHandler(runtime.outbox, runtime.region, runtime.pseudonyms, clock)


def ingest_of(runtime: Runtime, clock: Clock = utcnow) -> IngestHandler:
    """Live ingest on `runtime`'s database, broker and region."""
    return IngestHandler(runtime.pool, runtime.outbox, runtime.publisher, runtime.region, clock)


# The matcher's messages as commands, retried whole when their handling fails (a test
# handler that fails on purpose must not have its bundles split).
COMMANDS: Codec[Command] = Codec(parse_commands)


@dataclass
class MatcherCrashingOnce:
    """A matcher that handles a message and then, once, dies before the ack (its
    outcome committed, the message given back): pass `setup` to `System.start`."""

    when: Callable[[Sequence[Command]], bool] = lambda _commands: True
    crashes: int = 0

    async def setup(self, runtime: Runtime) -> None:
        real = matcher_of(runtime)

        async def crash_after_commit(commands: Sequence[Command]) -> None:
            await real(commands)
            if self.crashes == 0 and self.when(commands):
                self.crashes += 1
                raise ConnectionError("process lost before the ack")

        runtime.consume(MATCHER_QUEUE, COMMANDS, crash_after_commit, batch_size=1)
