"""The notifier's SMTP client against real servers: aiosmtpd (plain, STARTTLS,
implicit TLS, AUTH) and a scripted server that records exactly what the client writes
(pipelining, refusals, broken replies)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notifier.mailer import SmtpMailer
from services.notifier.mime import OutgoingEmail
from services.notifier.smtp import SmtpDisconnected, SmtpError, SmtpLogin, SmtpSession, _as_data
from testing.ports import free_port

MESSAGE = b"From: a@school.example\nTo: b@team.example\nSubject: Test\n\nHallo\n.punt\n..twee\n"


class Keep:
    """aiosmtpd handler: keeps each envelope; offers PIPELINING when asked to."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []
        self._pipelining = pipelining

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self._pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 OK"


@contextmanager
def aiosmtpd_server(handler: Keep, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests make their certificate with openssl"
    subprocess.run(  # noqa: S603 (fixed arguments)
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


async def open_session(port: int, **kwargs: Any) -> SmtpSession:
    return await SmtpSession.open("127.0.0.1", port, local_hostname="notifier", **kwargs)


# --- against aiosmtpd -------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [False, True])
async def test_e_mails_arrive_with_crlf_and_their_dots_intact(pipelining: bool) -> None:
    handler = Keep(pipelining=pipelining)
    with aiosmtpd_server(handler) as port:
        session = await open_session(port)
        assert ("pipelining" in session.extensions) is pipelining
        for n in range(3):  # one session carries many e-mails
            await session.send("a@school.example", f"b{n}@team.example", MESSAGE)
        session.close()
    assert [(frm, tos) for frm, tos, _ in handler.envelopes] == [
        ("a@school.example", [f"b{n}@team.example"]) for n in range(3)
    ]
    assert handler.envelopes[0][2] == MESSAGE.replace(b"\n", b"\r\n")


async def test_starttls_is_used_when_offered_and_the_certificate_checked(
    certificate: tuple[Path, Path],
) -> None:
    handler = Keep()
    with aiosmtpd_server(
        handler, tls_context=server_context(certificate), require_starttls=True
    ) as port:
        session = await open_session(port, tls_context=client_context(certificate))
        assert session._writer.get_extra_info("ssl_object") is not None
        await session.send("a@school.example", "b@team.example", MESSAGE)
        session.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await open_session(port)  # the system's trust store does not know this server
    assert len(handler.envelopes) == 1


async def test_implicit_tls_and_login(certificate: tuple[Path, Path]) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"geheim:1", handled=False)

    handler = Keep()
    with aiosmtpd_server(
        handler,
        ssl_context=server_context(certificate),
        authenticator=authenticator,
        auth_require_tls=False,  # aiosmtpd does not see that the socket itself is TLS
    ) as port:
        tls = client_context(certificate)
        session = await open_session(
            port,
            implicit_tls=True,
            tls_context=tls,
            login=SmtpLogin("notifier", "geheim:1"),
        )
        await session.send("a@school.example", "b@team.example", MESSAGE)
        session.close()
        with pytest.raises(SmtpError) as refused:
            await open_session(
                port, implicit_tls=True, tls_context=tls, login=SmtpLogin("notifier", "fout")
            )
    assert refused.value.code == 535
    assert "fout" not in str(refused.value)  # the password is never part of an error
    assert logins == [(b"notifier", b"geheim:1"), (b"notifier", b"fout")]
    assert len(handler.envelopes) == 1


# --- against a scripted server ----------------------------------------------------------


class Scripted:
    """Answers each command line with the next reply its script gives for that verb,
    and records every chunk the client writes, so pipelining is visible."""

    def __init__(self, replies: Callable[[bytes], bytes], ehlo: bytes) -> None:
        self.chunks: list[bytes] = []
        self._replies = replies
        self._ehlo = ehlo

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted ESMTP\r\n")
        in_data = False
        buffer = b""
        while chunk := await reader.read(65536):
            self.chunks.append(chunk)
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                if in_data:
                    if line == b".":
                        in_data = False
                        writer.write(self._replies(b"."))
                    continue
                verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
                reply = self._ehlo if verb == b"EHLO" else self._replies(verb)
                if reply.startswith(b"354"):
                    in_data = True
                if reply == b"CLOSE":
                    writer.close()
                    return
                writer.write(reply)
        writer.close()


@asynccontextmanager
async def scripted(
    replies: dict[bytes, bytes], *, pipelining: bool = True
) -> AsyncIterator[tuple[Scripted, int]]:
    offers = b"250-PIPELINING\r\n" if pipelining else b""
    ehlo = b"250-scripted\r\n" + offers + b"250 8BITMIME\r\n"
    defaults = {b"MAIL": b"250 ok\r\n", b"RCPT": b"250 ok\r\n", b"DATA": b"354 go\r\n"}
    defaults |= {b".": b"250 queued\r\n", b"RSET": b"250 reset\r\n"}
    server = Scripted(lambda verb: {**defaults, **replies}.get(verb, b"500 what\r\n"), ehlo)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    try:
        yield server, int(listener.sockets[0].getsockname()[1])
    finally:
        listener.close()


async def test_mail_rcpt_and_data_go_in_one_write_when_pipelining() -> None:
    async with scripted({}) as (server, port):
        session = await open_session(port)
        server.chunks.clear()
        await session.send("a@school.example", "b@team.example", b"Hallo\n")
        session.close()
    assert server.chunks[0] == (
        b"MAIL FROM:<a@school.example>\r\nRCPT TO:<b@team.example>\r\nDATA\r\n"
    )
    assert server.chunks[1] == b"Hallo\r\n.\r\n"


async def test_without_pipelining_each_command_waits_for_its_reply() -> None:
    async with scripted({}, pipelining=False) as (server, port):
        session = await open_session(port)
        server.chunks.clear()
        await session.send("a@school.example", "b@team.example", b"Hallo\n")
        session.close()
    assert server.chunks[:3] == [
        b"MAIL FROM:<a@school.example>\r\n",
        b"RCPT TO:<b@team.example>\r\n",
        b"DATA\r\n",
    ]


@pytest.mark.parametrize("pipelining", [False, True])
async def test_a_refused_recipient_is_raised_and_the_session_stays_usable(
    pipelining: bool,
) -> None:
    async with scripted(
        {b"RCPT": b"550 5.1.1 no such user\r\n", b"DATA": b"554 no valid recipients\r\n"},
        pipelining=pipelining,
    ) as (server, port):
        session = await open_session(port)
        with pytest.raises(SmtpError) as refused:
            await session.send("a@school.example", "nobody@team.example", b"Hallo\n")
        assert session.is_open
        sent = b"".join(server.chunks)
    assert (refused.value.code, refused.value.command) == (550, "RCPT")
    assert "refused RCPT: 550 5.1.1 no such user" in str(refused.value)
    assert sent.endswith(b"RSET\r\n")
    assert b"Hallo" not in sent


async def test_a_server_that_takes_data_after_a_refusal_gets_an_empty_message_then_rset() -> None:
    async with scripted({b"MAIL": b"451 try later\r\n"}) as (server, port):
        session = await open_session(port)
        with pytest.raises(SmtpError) as refused:
            await session.send("a@school.example", "b@team.example", b"Hallo\n")
        await asyncio.sleep(0.05)
        sent = b"".join(server.chunks)
    assert (refused.value.code, refused.value.command) == (451, "MAIL")
    assert sent.endswith(b"DATA\r\n.\r\nRSET\r\n")
    assert b"Hallo" not in sent


async def test_a_refused_message_is_raised() -> None:
    async with scripted({b".": b"552 too big\r\n"}) as (_, port):
        session = await open_session(port)
        with pytest.raises(SmtpError) as refused:
            await session.send("a@school.example", "b@team.example", b"Hallo\n")
    assert (refused.value.code, refused.value.command) == (552, "the message")


@pytest.mark.parametrize(
    "reply", [b"CLOSE", b"hello there\r\n"], ids=["hangs up", "malformed reply"]
)
async def test_a_broken_server_is_a_connection_error_and_ends_the_session(reply: bytes) -> None:
    async with scripted({b"MAIL": reply}) as (_, port):
        session = await open_session(port)
        with pytest.raises(SmtpDisconnected):
            await session.send("a@school.example", "b@team.example", b"Hallo\n")
        assert not session.is_open


async def test_multi_line_replies_are_read_whole() -> None:
    async with scripted({b"RCPT": b"250-fine\r\n250-really\r\n250 ok\r\n"}) as (server, port):
        session = await open_session(port)
        await session.send("a@school.example", "b@team.example", b"Hallo\n")
        await session.send("a@school.example", "c@team.example", b"Tweede\n")
        await asyncio.sleep(0.05)
    # Had a continuation line been taken for a whole reply, DATA's 354 would have been
    # read as the reply to RCPT and the message written too early.
    assert b"".join(server.chunks).count(b".\r\n") == 2


async def test_a_server_that_does_not_answer_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # no greeting, ever

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = int(listener.sockets[0].getsockname()[1])
    try:
        with pytest.raises(TimeoutError):
            await open_session(port, timeout=0.3)
    finally:
        listener.close()


@pytest.mark.parametrize(
    "address", ["b@team.example\r\nRCPT TO:<x@evil.example>", "b@team.example>", "<b@x>", "a b@x"]
)
async def test_an_address_that_could_inject_commands_is_refused_before_sending(
    address: str,
) -> None:
    async with scripted({}) as (server, port):
        session = await open_session(port)
        server.chunks.clear()
        with pytest.raises(SmtpError):
            await session.send("a@school.example", address, b"Hallo\n")
        await asyncio.sleep(0.05)
    assert server.chunks == []


def test_data_gets_crlf_doubled_leading_dots_and_the_end_marker() -> None:
    assert _as_data(b"a\n.b\r\nc\r..d") == b"a\r\n..b\r\nc\r\n...d\r\n.\r\n"
    assert _as_data(b"ends\r\n") == b"ends\r\n.\r\n"


# --- the mailer's connection reuse ----------------------------------------------------------


async def test_the_mailer_reuses_a_connection_and_replaces_one_the_server_closed() -> None:
    connections = 0

    class Counting(Keep):
        async def handle_EHLO(
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            nonlocal connections
            connections += 1
            return await super().handle_EHLO(server, session, envelope, hostname, responses)

    def email(n: int) -> OutgoingEmail:
        return OutgoingEmail("a@school.example", "b@team.example", f"m{n}", MESSAGE)

    # The server drops a connection after 0.3 s without a command.
    handler = Counting(pipelining=True)
    with aiosmtpd_server(handler, timeout=0.3) as port:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{port}")
        try:
            for n in range(2):
                await mailer.send(
                    OutgoingEmail("a@school.example", "b@team.example", f"m{n}", MESSAGE)
                )
            assert connections == 1
            await asyncio.sleep(0.6)
            await mailer.send(OutgoingEmail("a@school.example", "b@team.example", "m2", MESSAGE))
        finally:
            mailer.close()
    assert connections == 2
    assert len(handler.envelopes) == 3
