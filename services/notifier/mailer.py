"""Delivering e-mail: by SMTP when VI_SMTP_URL is set, else as .eml files."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from services.notifier.mime import OutgoingEmail
from services.notifier.smtp import SmtpLogin, SmtpSession


class Mailer(Protocol):
    async def send(self, email: OutgoingEmail) -> None: ...

    def close(self) -> None:
        """Let go of what is kept open between e-mails."""


class EmlDirectoryMailer:
    """Writes each e-mail to `<dir>/<message-id>.eml`, atomically: a resend of the same
    e-mail overwrites the same file."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def send(self, email: OutgoingEmail) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", email.message_id)
        fd, tmp = tempfile.mkstemp(dir=self._dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(email.data)
        os.replace(tmp, self._dir / f"{name}.eml")

    def close(self) -> None:
        pass  # nothing is kept open


# SMTP connections kept open for reuse; the notifier sends as many e-mails at once.
SMTP_CONNECTIONS = 16


class SmtpMailer:
    """Sends over SMTP, keeping connections open between e-mails.

    Opening a connection (TCP, greeting, EHLO, maybe STARTTLS and login) costs more
    than sending one e-mail, so a connection goes back to an idle list after a send and
    is reused for up to `idle_seconds`. An idle connection the server has meanwhile
    closed fails before anything is sent: the e-mail then goes out on a fresh one.
    Any other error closes the connection and is raised (the consumer retries).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        idle_seconds: float = 10.0,
        max_idle: int = SMTP_CONNECTIONS,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"VI_SMTP_URL must be smtp://host:port, got scheme {parts.scheme!r}")
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._login = (
            SmtpLogin(unquote(parts.username), unquote(parts.password or ""))
            if parts.username
            else None
        )
        self._timeout = timeout
        self._idle_seconds = idle_seconds
        self._max_idle = max_idle
        self._idle: list[tuple[SmtpSession, float]] = []
        self._local_hostname: str | None = None

    async def _connect(self) -> SmtpSession:
        if self._local_hostname is None:
            # Looked up once (in a thread: it may ask DNS), not on every connect.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return await SmtpSession.open(
            self._host,
            self._port,
            local_hostname=self._local_hostname,
            implicit_tls=self._tls,
            login=self._login,
            timeout=self._timeout,
        )

    def _take_idle(self) -> SmtpSession | None:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_open and now - since < self._idle_seconds:
                return client
            client.close()
        return None

    def _give_back(self, client: SmtpSession) -> None:
        if len(self._idle) < self._max_idle and client.is_open:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()

    async def send(self, email: OutgoingEmail) -> None:
        client = self._take_idle()
        if client is not None:
            try:
                await client.send(email.sender, email.recipient, email.data)
            except ConnectionError:
                client.close()  # went stale while idle: try once on a fresh connection
            except BaseException:
                client.close()
                raise
            else:
                self._give_back(client)
                return
        client = await self._connect()
        try:
            await client.send(email.sender, email.recipient, email.data)
        except BaseException:
            client.close()
            raise
        self._give_back(client)

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


def mailer_for(smtp_url: str | None, mail_dir: Path) -> Mailer:
    return SmtpMailer(smtp_url) if smtp_url else EmlDirectoryMailer(mail_dir)
