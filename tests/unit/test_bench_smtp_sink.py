"""The benchmark's SMTP sink: a minimal server, but a correct one for the notifier's
client (SmtpMailer, which pipelines) and for a client that splits its writes
anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvloop

from bench.traffic import SmtpSink
from services.notifier.mailer import SmtpMailer
from services.notifier.mime import OutgoingEmail


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


def email(number: int, body: str = "Goedemorgen,\n\nEen match.\n") -> OutgoingEmail:
    message_id = f"m{number}@vi.example"
    data = (
        "From: vi@vi.example\nTo: zorg@partner.example\n"
        f"Subject: Match {number}\nMessage-ID: <{message_id}>\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        f"{body}"
    ).encode()
    return OutgoingEmail("vi@vi.example", "zorg@partner.example", message_id, data)


def as_received(message: OutgoingEmail) -> bytes:
    """What the server gets: the client sends LF line ends as CRLF."""
    return message.data.replace(b"\n", b"\r\n")


async def test_several_emails_over_one_connection_are_counted_with_dots_unstuffed(
    sink: SmtpSink,
) -> None:
    mailer = SmtpMailer(sink.url)
    try:
        plain = email(1)
        await mailer.send(plain)
        assert (sink.count, sink.duplicates) == (1, 0)
        assert sink.last_content == as_received(plain)

        # Lines starting with "." (and a lone "." line) go dot-stuffed over the wire.
        dotted = email(2, ".begint met een punt\n.\n..twee punten\nmidden . in\n.")
        await mailer.send(dotted)
        assert sink.last_content == as_received(dotted) + b"\r\n"

        accented = email(3, "Één jeugdige, één coördinator.\n")
        await mailer.send(accented)
        assert sink.last_content == as_received(accented)

        large = email(4, "".join(f".regel {n} {'x' * 70}\n" for n in range(20_000)))
        await mailer.send(large)
        assert sink.last_content == as_received(large)

        assert (sink.count, sink.duplicates) == (4, 0)
        assert len(sink._transports) == 1  # the mailer reused its one connection
        assert sink.last_at > 0
    finally:
        mailer.close()


async def test_the_same_message_id_twice_counts_as_a_duplicate(sink: SmtpSink) -> None:
    mailer = SmtpMailer(sink.url)
    try:
        await mailer.send(email(1))
        first_at = sink.last_at
        await mailer.send(email(1, "Opnieuw verstuurd.\n"))
        await mailer.send(email(2))
    finally:
        mailer.close()
    assert (sink.count, sink.duplicates) == (2, 1)
    assert sink.last_at > first_at


async def test_rset_noop_and_quit(sink: SmtpSink) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)

    async def reply(command: bytes) -> bytes:
        if command:
            writer.write(command + b"\r\n")
        lines = [await asyncio.wait_for(reader.readline(), 5)]
        while lines[-1][3:4] == b"-":
            lines.append(await asyncio.wait_for(reader.readline(), 5))
        return b"".join(lines)

    assert (await reply(b""))[:3] == b"220"
    offered = await reply(b"EHLO bench")
    assert b"8BITMIME" in offered and b"SMTPUTF8" in offered and b"PIPELINING" in offered
    assert (await reply(b"NOOP"))[:3] == b"250"
    assert (await reply(b"MAIL FROM:<vi@vi.example>"))[:3] == b"250"
    assert (await reply(b"RCPT TO:<zorg@partner.example>"))[:3] == b"250"
    assert (await reply(b"RSET"))[:3] == b"250"
    assert (await reply(b"DATA"))[:3] == b"503"  # RSET forgot the sender and recipient
    assert sink.count == 0
    assert (await reply(b"QUIT"))[:3] == b"221"
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the server closed its side
    writer.close()
    await asyncio.sleep(0.05)
    assert not sink._transports


async def test_pipelined_and_split_commands_get_their_replies_in_order(sink: SmtpSink) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)

    async def replies(count: int) -> list[bytes]:
        lines: list[bytes] = []
        while len(lines) < count:
            line = await asyncio.wait_for(reader.readline(), 5)
            lines.append(line[:3])
            if line[3:4] == b"-":
                lines.pop()  # a continuation line of a multi-line reply
        return lines

    async def send(*chunks: bytes) -> None:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.01)  # separate TCP reads on the server

    assert await replies(1) == [b"220"]
    await send(b"EH", b"LO client\r", b"\nMAIL FROM:<a@b> BODY=8BITMIME SMTPUTF8\r\n")
    await send(b"RCPT TO:<c@d>\r")
    await send(b"\nRCPT TO:<e@f>\r\nDATA\r\n")
    assert await replies(5) == [b"250", b"250", b"250", b"250", b"354"]
    # The body in pieces, the end split inside "\r\n.\r\n", the next commands behind it.
    await send(b"Message-ID: <split@x>\r\n\r\n..eerste\r\nrest\r", b"\n.", b"\r\nNOOP\r\nRCPT")
    await send(b" TO:<g@h>\r\nFOO\r\nMAIL FROM:<a@b>\r\nDATA\r\n")
    assert await replies(6) == [b"250", b"250", b"503", b"500", b"250", b"503"]
    assert sink.count == 1
    assert sink.last_content == b"Message-ID: <split@x>\r\n\r\n.eerste\r\nrest\r\n"

    # An empty body, then QUIT in the same write as the end of the data.
    await send(b"RCPT TO:<c@d>\r\nDATA\r\n")
    assert await replies(2) == [b"250", b"354"]
    await send(b".\r\nQUIT\r\n")
    assert await replies(2) == [b"250", b"221"]
    assert await asyncio.wait_for(reader.read(), 5) == b""
    assert (sink.count, sink.last_content) == (2, b"")
    writer.close()


async def test_close_closes_the_open_client_connections() -> None:
    sink = SmtpSink()
    await sink.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    assert (await reader.readline()).startswith(b"220 ")
    await sink.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


def test_the_sink_works_on_uvloop_as_in_the_benchmark() -> None:
    async def scenario() -> tuple[int, int, bytes]:
        sink = SmtpSink()
        await sink.start()
        mailer = SmtpMailer(sink.url, timeout=5)
        try:
            for number in (1, 2, 1):
                await mailer.send(email(number, ".punt\n"))
        finally:
            mailer.close()
            await sink.close()
        return sink.count, sink.duplicates, sink.last_content

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        count, duplicates, content = runner.run(scenario())
    assert (count, duplicates) == (2, 1)
    assert content == as_received(email(1, ".punt\n"))
