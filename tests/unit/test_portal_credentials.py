"""The portal's login factors: argon2 passwords, TOTP codes (once each), tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp

from services.portal import credentials

NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def test_a_password_matches_only_its_own_hash() -> None:
    stored = credentials.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert credentials.password_matches(stored, "correct horse battery")
    assert not credentials.password_matches(stored, "correct horse batterY")
    assert not credentials.password_matches(None, "correct horse battery")
    assert not credentials.password_matches("not a hash", "correct horse battery")


def test_a_new_password_must_be_long_enough_and_repeated_alike() -> None:
    assert credentials.password_problem("kort", "kort") is not None
    assert credentials.password_problem("lang genoeg wachtwoord", "lang genoeg wachtwoordX")
    assert credentials.password_problem("lang genoeg wachtwoord", "lang genoeg wachtwoord") is None


def _code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


def test_the_current_totp_code_is_accepted_once() -> None:
    secret = credentials.new_totp_secret()
    step = credentials.accepted_totp_step(secret, _code(secret, NOW), NOW, None)
    assert step == credentials.totp_step(NOW)
    # The same code again (a replay) is refused, as is any earlier step.
    assert credentials.accepted_totp_step(secret, _code(secret, NOW), NOW, step) is None


def test_one_step_of_clock_drift_is_allowed_two_are_not() -> None:
    secret = credentials.new_totp_secret()
    late = _code(secret, NOW - timedelta(seconds=30))
    assert credentials.accepted_totp_step(secret, late, NOW, None) is not None
    too_late = _code(secret, NOW - timedelta(seconds=90))
    assert credentials.accepted_totp_step(secret, too_late, NOW, None) is None


def test_a_wrong_or_malformed_code_is_refused() -> None:
    secret = credentials.new_totp_secret()
    right = _code(secret, NOW)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, "", "12345", "abcdef", "1234567"):
        assert credentials.accepted_totp_step(secret, code, NOW, None) is None
    spaced = f"{right[:3]} {right[3:]}"
    assert credentials.accepted_totp_step(secret, spaced, NOW, None) is not None


def test_tokens_compare_only_when_both_present_and_equal() -> None:
    token = credentials.new_token()
    assert credentials.tokens_equal(token, token)
    assert not credentials.tokens_equal(token, token + "x")
    assert not credentials.tokens_equal(token, None)
    assert not credentials.tokens_equal(None, None)
    assert not credentials.tokens_equal("", "")
    assert credentials.token_hash(token) != token
    assert len(credentials.token_hash(token)) == 64


def test_the_qr_code_is_an_inline_svg_of_the_provisioning_uri() -> None:
    secret = credentials.new_totp_secret()
    uri = credentials.provisioning_uri(secret, "ib@linde.example")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri
    svg = credentials.qr_svg(uri)
    assert svg.startswith("<svg") and "<path" in svg and "<?xml" not in svg
