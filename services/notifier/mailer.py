"""Delivering e-mail: by SMTP when VI_SMTP_URL is set, else as .eml files."""

from __future__ import annotations

import os
import re
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import aiosmtplib


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class EmlDirectoryMailer:
    """Writes each e-mail to `<dir>/<message-id>.eml`, atomically: a resend of the same
    e-mail overwrites the same file."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    async def send(self, message: EmailMessage) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(message["Message-ID"]).strip("<>"))
        fd, tmp = tempfile.mkstemp(dir=self._dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(tmp, self._dir / f"{name}.eml")


class SmtpMailer:
    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"VI_SMTP_URL must be smtp://host:port, got scheme {parts.scheme!r}")
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._user = parts.username
        self._password = parts.password
        self._timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self._host,
            port=self._port,
            use_tls=self._tls,
            start_tls=False if self._tls else None,
            username=self._user,
            password=self._password,
            timeout=self._timeout,
        )


def mailer_for(smtp_url: str | None, mail_dir: Path) -> Mailer:
    return SmtpMailer(smtp_url) if smtp_url else EmlDirectoryMailer(mail_dir)
