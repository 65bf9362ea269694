"""What the benchmark sends and what it counts: the meldingen (half the youths get a
second melding from another partner, which makes a match), partners publishing with
their own logins and publisher confirms, a sink on the partner mailboxes, an SMTP sink,
and a progress line per second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import aiormq
from aio_pika.abc import AbstractRobustConnection
from aiormq.abc import DeliveredMessage

from bench.env import MUNICIPALITIES, REPORTER_IDS, BenchEnv
from shared.amqp.connection import connect
from shared.amqp.nodes import first_node
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INBOUND_EXCHANGE, partner_queue
from shared.contract.validation import example_bsn
from shared.envelopes import chunked
from shared.outgoing import OutboundMessage

# How many positions after a youth's first melding its second one is sent.
SECOND_LAG = 200
BIRTH_BASE = date(2008, 1, 1)


@dataclass(frozen=True)
class Melding:
    partner_id: str
    message_id: str
    melding_ref: str
    body: bytes
    completes_match: bool


def melding_body(
    ref: str, bsn: str, birth_date: date, municipality: str, reporter: str, now: str
) -> dict[str, Any]:
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": {"bsn": bsn, "birth_date": birth_date.isoformat(), "municipality": municipality},
        "reporter": {
            "name": reporter,
            "email": f"{reporter.lower().replace(' ', '.')}@partner.example",
            "phone": "+31201234567",
        },
        "reported_at": now,
    }


def plan(count: int, *, seed_base: int, tag: str, lag: int | None = None) -> list[Melding]:
    """`count` meldingen: a first melding on youth after youth, and for every other
    youth a second one from the next partner `lag` positions later (a match)."""
    if lag is None:
        lag = max(1, min(SECOND_LAG, count // 20))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    out: list[Melding] = []
    pending: deque[tuple[int, int]] = deque()
    youth = 0

    def make(k: int, second: bool) -> Melding:
        partner = REPORTER_IDS[(k + (1 if second else 0)) % len(REPORTER_IDS)]
        ref = f"{tag}-{k}-{2 if second else 1}"
        body = melding_body(
            ref,
            example_bsn(seed_base + k),
            BIRTH_BASE + timedelta(days=(k * 7) % 5000),
            MUNICIPALITIES[k % len(MUNICIPALITIES)][0],
            f"Medewerker {k % 97}",
            now,
        )
        mid = f"{tag}-m{len(out)}-{2 if second else 1}"  # "-2": completes a match (bench.relay)
        return Melding(partner, mid, ref, json.dumps(body).encode(), second)

    while len(out) < count:
        if pending and pending[0][0] <= len(out):
            out.append(make(pending.popleft()[1], True))
            continue
        out.append(make(youth, False))
        if youth % 2 == 0:
            pending.append((len(out) + lag, youth))
        youth += 1
    return out


def matches_in(meldingen: Sequence[Melding]) -> int:
    return sum(1 for m in meldingen if m.completes_match)


class Partners:
    """One connection per partner, logged in with the partner's own login; every publish
    carries user_id = that login and waits for the broker's confirm. A bulk load sends
    its meldingen in chunks written together, as a partner's system loading a region
    at once would (and as the services publish theirs)."""

    def __init__(self, env: BenchEnv) -> None:
        self._env = env
        self._connections: list[AbstractRobustConnection] = []
        self._publishers: dict[str, Publisher] = {}
        self.sent_at: dict[str, float] = {}
        self.sent = 0

    async def start(self, partner_ids: Iterable[str] = REPORTER_IDS) -> None:
        for pid in partner_ids:
            connection = await connect(self._env.partner_url(pid), f"bench-partner-{pid}")
            publisher = Publisher(connection)
            await publisher.start()
            self._connections.append(connection)
            self._publishers[pid] = publisher

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        self._connections.clear()

    def _outgoing(self, melding: Melding, routing_key: str = "melding.register") -> OutboundMessage:
        return OutboundMessage(
            INBOUND_EXCHANGE,
            routing_key,
            melding.body,
            message_type=None,
            message_id=melding.message_id,
            user_id=self._env.region.partners_by_id[melding.partner_id].broker_user,
        )

    async def publish(self, melding: Melding, *, track: bool = False) -> None:
        if track:
            self.sent_at[melding.message_id] = time.monotonic()
        await self._publishers[melding.partner_id].publish(self._outgoing(melding))
        self.sent += 1

    async def publish_all(
        self,
        meldingen: Sequence[Melding],
        *,
        chunk: int = 32,
        window: int = 8,
        routing_key: str = "melding.register",
    ) -> None:
        """As fast as the broker confirms: chunks of `chunk` meldingen (each partner's
        share written together), up to `window` chunks in flight. An onboarding load
        passes `routing_key="onboard.melding.register"`."""
        chunks = iter(chunked(meldingen, chunk))

        async def worker() -> None:
            for part in chunks:
                by_partner: dict[str, list[OutboundMessage]] = {}
                for melding in part:
                    by_partner.setdefault(melding.partner_id, []).append(
                        self._outgoing(melding, routing_key)
                    )
                await asyncio.gather(
                    *(self._publishers[pid].publish(*out) for pid, out in by_partner.items())
                )
                self.sent += len(part)

        await asyncio.gather(*(worker() for _ in range(window)))

    async def publish_at_rate(
        self, meldingen: Sequence[Melding], per_second: float
    ) -> list[asyncio.Task[None]]:
        """Offered load: one publish every 1/per_second s, whatever the confirms do."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: list[asyncio.Task[None]] = []
        for i, melding in enumerate(meldingen):
            delay = start + i / per_second - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.publish(melding, track=True)))
        await asyncio.gather(*tasks)
        return tasks


@dataclass
class Sink:
    """Counts what arrives in the partner mailboxes (and, for the bare relay, in the
    e-mail queue), consuming with the services' login on the benchmark's vhost.

    Counts are of distinct messages (by message_id; receipts by the message they
    answer): at-least-once delivery may bring a copy, which is counted apart."""

    track: bool = False
    statuses: Counter[str] = field(default_factory=Counter)
    notices: Counter[str] = field(default_factory=Counter)
    events: set[str] = field(default_factory=set)
    email_jobs: int = 0
    duplicates: int = 0
    receipt_at: dict[str, float] = field(default_factory=dict)
    match_notice_at: dict[str, float] = field(default_factory=dict)
    notice_by_correlation: dict[str, float] = field(default_factory=dict)
    last_at: float = 0.0
    receipt_times: list[float] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _connection: aiormq.abc.AbstractConnection | None = None

    async def start(self, amqp_url: str, queues: Iterable[str], *, email_queue: str = "") -> None:
        # aiormq without aio-pika's message objects: the sink is part of the load on the
        # machine, so it does as little per message as it can.
        self._connection = await aiormq.connect(
            first_node(amqp_url), client_properties={"connection_name": "bench-sink"}
        )
        channel = await self._connection.channel()
        await channel.basic_qos(prefetch_count=2000)
        for name in queues:
            await channel.basic_consume(name, self._on_partner_message, no_ack=True)
        if email_queue:
            await channel.basic_consume(email_queue, self._on_email_job, no_ack=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def receipts(self) -> int:
        return len(self.receipt_times)

    @property
    def notice_count(self) -> int:
        return sum(self.notices.values())

    def _first(self, key: str | None) -> bool:
        if key is None:
            return True
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(key)
        return True

    async def _on_partner_message(self, delivered: DeliveredMessage) -> None:
        now = time.monotonic()
        message = delivered.header.properties
        kind = message.message_type or ""
        if kind == "receipt":
            if not self._first(f"r/{message.correlation_id}"):
                return
            self.last_at = now
            self.receipt_times.append(now)
            if delivered.body.startswith(b"{"):
                status = json.loads(delivered.body).get("status")
                self.statuses[str(status)] += 1
            if self.track and message.correlation_id:
                self.receipt_at[message.correlation_id] = now
            return
        if not self._first(message.message_id):
            return
        self.last_at = now
        self.notices[kind] += 1
        if message.correlation_id:
            self.events.add(message.correlation_id)
            if self.track:
                self.notice_by_correlation.setdefault(message.correlation_id, now)
        if self.track and kind == "match.notice" and delivered.body.startswith(b"{"):
            ref = json.loads(delivered.body).get("melding_ref")
            if isinstance(ref, str):
                self.match_notice_at.setdefault(ref, now)

    async def _on_email_job(self, delivered: DeliveredMessage) -> None:
        if self._first(delivered.header.properties.message_id):
            self.last_at = time.monotonic()
            self.email_jobs += 1


def partner_queues(env: BenchEnv) -> list[str]:
    return [partner_queue(p.id) for p in env.region.partner]


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
_EHLO = b"250-bench-smtp-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"


class _SmtpSession(asyncio.Protocol):
    """One client connection: the commands a mail client needs, replies in order (so
    pipelined commands work), DATA until a lone "." line, dot-stuffing undone."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._in_data = False
        self._scan_from = 0  # where to resume looking for the end of DATA
        self._mail = False
        self._recipients = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._sink._transports.add(self._transport)
        self._transport.write(b"220 bench-smtp-sink ESMTP\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._sink._transports.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        buffer = self._buffer
        buffer += data
        replies: list[bytes] = []
        while True:
            if self._in_data:
                # The body starts with the CRLF put in front of it at DATA, so its end
                # is always CRLF "." CRLF, and every line start follows a CRLF.
                end = buffer.find(b"\r\n.\r\n", self._scan_from)
                if end < 0:
                    self._scan_from = max(0, len(buffer) - 4)
                    break
                content = bytes(buffer[: end + 2]).replace(b"\r\n..", b"\r\n.")[2:]
                del buffer[: end + 5]
                self._in_data, self._mail, self._recipients = False, False, 0
                self._sink._received(content)
                replies.append(b"250 OK\r\n")
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            verb, _, argument = line.partition(b" ")
            verb = verb.upper()
            replies.append(self._command(verb, argument.lstrip().upper()))
            if verb == b"QUIT":
                transport.write(b"".join(replies))
                transport.close()
                return
            if self._in_data:
                buffer[:0] = b"\r\n"
                self._scan_from = 0
        if replies:
            transport.write(b"".join(replies))

    def _command(self, verb: bytes, argument: bytes) -> bytes:
        if verb in (b"EHLO", b"HELO", b"RSET"):
            self._mail, self._recipients = False, 0
            return _EHLO if verb == b"EHLO" else b"250 OK\r\n"
        if verb == b"MAIL":
            if not argument.startswith(b"FROM:"):
                return b"501 Syntax: MAIL FROM:<address>\r\n"
            self._mail, self._recipients = True, 0
            return b"250 OK\r\n"
        if verb == b"RCPT":
            if not self._mail:
                return b"503 MAIL first\r\n"
            if not argument.startswith(b"TO:"):
                return b"501 Syntax: RCPT TO:<address>\r\n"
            self._recipients += 1
            return b"250 OK\r\n"
        if verb == b"DATA":
            if not self._recipients:
                return b"503 RCPT first\r\n"
            self._in_data = True
            return b"354 End data with <CR><LF>.<CR><LF>\r\n"
        if verb == b"NOOP":
            return b"250 OK\r\n"
        if verb == b"QUIT":
            return b"221 Bye\r\n"
        return b"500 Command unrecognized\r\n"


class SmtpSink:
    """A real (minimal) SMTP server in the benchmark's own event loop that counts the
    distinct e-mails it is given by Message-ID (a resend carries the same one). It
    stands in for the region's mail server, so it does as little as it can: a full
    server (aiosmtpd) cost about a third of the benchmark process's CPU."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()
        self.duplicates = 0
        self.last_at = 0.0
        self.last_content = b""
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.Transport] = set()

    @property
    def count(self) -> int:
        return len(self._seen)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _received(self, content: bytes) -> None:
        self.last_content = content
        found = _MESSAGE_ID.search(content)
        key = found.group(1) if found else str(len(self._seen)).encode()
        if key in self._seen:
            self.duplicates += 1
        else:
            self._seen.add(key)
            self.last_at = time.monotonic()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _SmtpSession(self), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self._transports):
                transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


@contextlib.asynccontextmanager
async def progress(name: str, line: Callable[[float], str]) -> Any:
    """Print `[name] <line(elapsed)>` to stderr once a second while the block runs."""
    start = time.monotonic()

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            print(
                f"[{name}] {time.monotonic() - start:6.1f}s {line(time.monotonic() - start)}",
                file=sys.stderr,
                flush=True,
            )

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Stalled(RuntimeError):
    pass


async def wait_until(
    done: Callable[[], bool],
    progress_value: Callable[[], int],
    *,
    stall_seconds: float = 60.0,
    check: Callable[[], None] | None = None,
) -> None:
    """Wait for `done()`; give up when `progress_value()` has not moved for
    `stall_seconds`."""
    last_value, last_change = progress_value(), time.monotonic()
    while not done():
        await asyncio.sleep(0.02)
        if check is not None:
            check()
        value = progress_value()
        if value != last_value:
            last_value, last_change = value, time.monotonic()
        elif time.monotonic() - last_change > stall_seconds:
            raise Stalled(f"no progress for {stall_seconds:.0f} s (at {value})")
