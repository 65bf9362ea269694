"""Rendering an e-mail job into the bytes handed to SMTP (or written as an .eml file).

The standard library's `email` package parses every header into objects on the way in
and folds it again on the way out; that was two thirds of the notifier's time. Our
e-mails always have one shape (plain text, UTF-8, quoted-printable, ASCII headers), so
that shape is written directly, byte for byte what the standard library would write.
Anything else (a header outside ASCII or with a line break, a very long subject) goes
through the standard library, which encodes it or refuses it.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email import quoprimime
from email.message import EmailMessage
from email.utils import formatdate

from services.notifier.templates import compose
from shared.envelopes import EmailJob

MESSAGE_ID_DOMAIN = "verwijsindex.invalid"
# Quoted-printable in lines of at most 78: safe for any mail server.
BODY_LINE_LENGTH = 78
# Headers are written unfolded up to the RFC 5322 limit of 998: a subject with a
# match_id in it would otherwise be folded before its first word and read back with a
# leading space.
HEADER_LINE_LENGTH = 998


@dataclass(frozen=True)
class OutgoingEmail:
    sender: str
    recipient: str
    message_id: str  # the Message-ID without its angle brackets
    data: bytes  # the whole message, lines ending in LF


def message_id_of(job: EmailJob) -> str:
    return f"{job.message_id}@{MESSAGE_ID_DOMAIN}"


def render(job: EmailJob, sender: str, *, date: str | None = None) -> OutgoingEmail:
    subject, text = compose(job.data)
    date = date or formatdate(localtime=False)
    if _plain(sender) and _plain(job.to) and _plain_subject(subject):
        data = _write(sender, job.to, subject, date, message_id_of(job), text)
    else:
        data = _build(sender, job.to, subject, date, message_id_of(job), text).as_bytes()
    return OutgoingEmail(sender, job.to, message_id_of(job), data)


def _plain(address: str) -> bool:
    return address.isascii() and address.isprintable() and " " not in address


def _plain_subject(subject: str) -> bool:
    fits = len("Subject: ") + len(subject) <= HEADER_LINE_LENGTH
    return fits and subject.isascii() and subject.isprintable()


def _write(sender: str, to: str, subject: str, date: str, message_id: str, text: str) -> bytes:
    lines = text.encode("utf-8").splitlines()
    body = quoprimime.body_encode((b"\n".join(lines) + b"\n").decode("latin-1"), BODY_LINE_LENGTH)
    head = (
        f"From: {sender}\n"
        f"To: {to}\n"
        f"Subject: {subject}\n"
        f"Date: {date}\n"
        f"Message-ID: <{message_id}>\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        "MIME-Version: 1.0\n\n"
    )
    return head.encode("ascii") + body.encode("ascii")


_BUILD_POLICY = email.policy.default.clone(max_line_length=BODY_LINE_LENGTH)
_HEADER_POLICY = email.policy.default.clone(max_line_length=HEADER_LINE_LENGTH)


def render_with_stdlib(job: EmailJob, sender: str, *, date: str | None = None) -> EmailMessage:
    """The same e-mail built by the standard library (for the unusual cases)."""
    subject, text = compose(job.data)
    date = date or formatdate(localtime=False)
    return _build(sender, job.to, subject, date, message_id_of(job), text)


def _build(
    sender: str, to: str, subject: str, date: str, message_id: str, text: str
) -> EmailMessage:
    message = EmailMessage(policy=_BUILD_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = date
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(text, cte="quoted-printable")
    message.policy = _HEADER_POLICY
    return message
