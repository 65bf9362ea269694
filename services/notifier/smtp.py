"""A small ESMTP client that pipelines (RFC 2920).

An e-mail is four exchanges with the server: MAIL, RCPT, DATA and the message.
Sent one at a time, each is a write, a wait and a read; aiosmtplib works that way,
and it cost the notifier about 230 µs of CPU per e-mail, more than everything else
it does for that e-mail. When the server offers PIPELINING, MAIL, RCPT and DATA go in
one write and their replies are read together: about 40 µs per e-mail. Without
PIPELINING the same commands go one by one.

What a session does: connect (implicit TLS for smtps://), read the greeting, EHLO,
STARTTLS when the server offers it on a plain connection (certificates verified),
EHLO again, AUTH PLAIN or LOGIN when a login is configured. Then any number of
e-mails, one recipient each. Line ends become CRLF and lines starting with a dot are
doubled, as RFC 5321 requires. Any failure closes the session except a refused
e-mail, after which RSET makes the session usable again.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import ssl
from dataclasses import dataclass
from typing import Final

# Long enough for any reply line a server sends (RFC 5321 allows 512 octets).
_LINE_LIMIT: Final = 8192
_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT: Final = re.compile(rb"^\.", re.MULTILINE)
# What an address may hold on the command line: no spaces, controls or angle brackets.
_SAFE_ADDRESS: Final = re.compile(r"[^\x00-\x20<>\x7f-\x9f]+")
# The commands of a mail transaction and the reply codes that let it go on.
_TRANSACTION: Final = (("MAIL", (250,)), ("RCPT", (250, 251)), ("DATA", (354,)))


class SmtpError(Exception):
    """The server refused a command: `code` is its reply code."""

    def __init__(self, code: int, command: str, text: str) -> None:
        super().__init__(f"SMTP server refused {command}: {code} {text}")
        self.code = code
        self.command = command
        self.text = text


class SmtpDisconnected(ConnectionError):
    """The server closed the connection (or never answered sensibly)."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str


@dataclass(frozen=True)
class SmtpLogin:
    username: str
    password: str


class SmtpSession:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self.extensions: dict[str, str] = {}

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        local_hostname: str,
        implicit_tls: bool = False,
        login: SmtpLogin | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> SmtpSession:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=(tls_context or _default_tls_context()) if implicit_tls else None,
                server_hostname=host if implicit_tls else None,
                limit=_LINE_LIMIT,
            )
            session = cls(reader, writer, timeout)
            try:
                await session._expect("greeting", 220)
                await session._ehlo(local_hostname)
                if not implicit_tls and "starttls" in session.extensions:
                    await session._command("STARTTLS", 220)
                    await writer.start_tls(
                        tls_context or _default_tls_context(), server_hostname=host
                    )
                    await session._ehlo(local_hostname)
                if login is not None:
                    await session._authenticate(login)
            except BaseException:
                session.close()
                raise
        return session

    @property
    def is_open(self) -> bool:
        return not self._writer.is_closing() and not self._reader.at_eof()

    def close(self) -> None:
        self._writer.close()

    async def send(self, sender: str, recipient: str, data: bytes) -> None:
        """Hand one e-mail to the server; returns once the server has accepted it."""
        mail = f"MAIL FROM:<{sender}>{self._mail_options(sender, recipient, data)}"
        lines = (mail, f"RCPT TO:<{recipient}>", "DATA")
        async with asyncio.timeout(self._timeout):
            replies: list[Reply] = []
            if "pipelining" in self.extensions:
                self._write("".join(f"{line}\r\n" for line in lines).encode())
                replies = [await self._reply() for _ in lines]
            else:
                for line, (_, accepted) in zip(lines, _TRANSACTION, strict=True):
                    self._write(f"{line}\r\n".encode())
                    replies.append(await self._reply())
                    if replies[-1].code not in accepted:
                        break
            for reply, (command, accepted) in zip(replies, _TRANSACTION, strict=False):
                if reply.code not in accepted:
                    await self._abandon(data_started=replies[-1].code == 354)
                    raise SmtpError(reply.code, command, reply.text)
            self._write(_as_data(data))
            await self._expect("the message", 250)

    def _mail_options(self, sender: str, recipient: str, data: bytes) -> str:
        for command, address in (("MAIL", sender), ("RCPT", recipient)):
            if not _SAFE_ADDRESS.fullmatch(address):
                # A line break in an address would end the command and start another.
                raise SmtpError(0, command, "address with spaces, control characters or <>")
        options = ""
        if not data.isascii():
            if "8bitmime" not in self.extensions:
                raise SmtpError(0, "MAIL", "server does not accept 8-bit data (no 8BITMIME)")
            options += " BODY=8BITMIME"
        if not (sender.isascii() and recipient.isascii()):
            if "smtputf8" not in self.extensions:
                raise SmtpError(0, "MAIL", "server does not accept UTF-8 addresses (no SMTPUTF8)")
            options += " SMTPUTF8"
        return options

    async def _ehlo(self, local_hostname: str) -> None:
        self._write(f"EHLO {local_hostname}\r\n".encode())
        reply = await self._reply()
        if reply.code != 250:
            raise SmtpError(reply.code, "EHLO", reply.text)
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            keyword, _, params = line.partition(" ")
            self.extensions[keyword.lower()] = params

    async def _authenticate(self, login: SmtpLogin) -> None:
        methods = self.extensions.get("auth", "").upper().split()
        if "PLAIN" in methods:
            token = _b64(f"\0{login.username}\0{login.password}")
            await self._command(f"AUTH PLAIN {token}", 235, shown="AUTH PLAIN")
        elif "LOGIN" in methods:
            await self._command("AUTH LOGIN", 334)
            await self._command(_b64(login.username), 334, shown="AUTH LOGIN username")
            await self._command(_b64(login.password), 235, shown="AUTH LOGIN password")
        else:
            raise SmtpError(0, "AUTH", "server offers neither AUTH PLAIN nor AUTH LOGIN")

    async def _abandon(self, *, data_started: bool) -> None:
        """End a refused transaction so the session can carry the next e-mail: an empty
        message if the server already waits for one (a pipelining server that took
        DATA after refusing a command), then RSET. If that fails too the session is
        closed and not reused."""
        try:
            if data_started:
                self._write(b".\r\n")
                await self._reply()
            await self._command("RSET", 250)
        except (SmtpError, OSError, TimeoutError):
            self.close()

    async def _command(self, line: str, ok: int, *, shown: str | None = None) -> Reply:
        self._write(f"{line}\r\n".encode())
        return await self._expect(shown or line.split(" ", 1)[0], ok)

    async def _expect(self, what: str, ok: int) -> Reply:
        # Callers run inside open()'s or send()'s timeout.
        reply = await self._reply()
        if reply.code != ok:
            raise SmtpError(reply.code, what, reply.text)
        return reply

    def _write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise SmtpDisconnected("SMTP connection closed")
        self._writer.write(data)

    async def _reply(self) -> Reply:
        lines: list[str] = []
        while True:
            try:
                raw = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                self.close()
                raise SmtpDisconnected("SMTP server closed the connection") from exc
            except asyncio.LimitOverrunError as exc:
                self.close()
                raise SmtpDisconnected("SMTP server sent an over-long reply line") from exc
            code, more, text = raw[:3], raw[3:4], raw[4:].rstrip(b"\r\n")
            if not code.isdigit() or more not in (b"-", b" ", b"\r", b"\n"):
                self.close()
                raise SmtpDisconnected(f"SMTP server sent a malformed reply {raw[:40]!r}")
            lines.append(text.decode("utf-8", "replace"))
            if more != b"-":
                return Reply(int(code), "\n".join(lines))


@functools.cache
def _default_tls_context() -> ssl.SSLContext:
    # One per process, made when first needed: each holds the system's CA certificates
    # (about 1 MB), and the notifier keeps 16 connections.
    return ssl.create_default_context()


def _as_data(data: bytes) -> bytes:
    """The message as DATA carries it: CRLF line ends, leading dots doubled, ended by
    a line holding a single dot."""
    body = _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", data))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
