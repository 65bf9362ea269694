"""The two login factors and the random tokens of the portal, free of I/O.

Passwords are stored as argon2id hashes; the second factor is TOTP (RFC 6238, 30 s
steps, one step of clock drift allowed either way), each code accepted once. Tokens
(sessions, activation links, CSRF) are random; the database keeps only the sha256 of
those that stand for a login.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
TOTP_STEP_SECONDS = 30
ISSUER = "Verwijsindex"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        # Spend the same time as a real check, so a response time does not tell
        # whether an account exists.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, repeated: str) -> str | None:
    """Why a new password cannot be used (in Dutch, for the form), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Kies een wachtwoord van minstens {MIN_PASSWORD_LENGTH} tekens."
    if password != repeated:
        return "De twee wachtwoorden zijn niet gelijk."
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_step(at: datetime) -> int:
    return int(at.timestamp()) // TOTP_STEP_SECONDS


def accepted_totp_step(secret: str, code: str, at: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (now, or one step either side), or None when it
    is wrong or was used before (a step at or before `last_step`)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = totp_step(at)
    for step in (now, now - 1, now + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected, code) and (last_step is None or step > last_step):
            return step
    return None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(data: str) -> str:
    """The QR code of `data` as an inline SVG element (no image request, no script)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    # Drop the XML declaration: the element goes inside an HTML page.
    return svg[svg.index("<svg") :]
