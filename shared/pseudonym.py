"""Keyed hashing of identities: the index matches on youths without storing who they are."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date


class Pseudonymizer:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def _mac(self, purpose: str, value: str) -> bytes:
        return hmac.new(self._key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).digest()

    def youth_by_bsn(self, bsn: str) -> bytes:
        return self._mac("youth-bsn", bsn)

    def youth_without_bsn(self, normalised_surname: str, birth_date: date, sex: str) -> bytes:
        return self._mac("youth-name", f"{normalised_surname}\x1f{birth_date.isoformat()}\x1f{sex}")

    def audit_ref(self, identity_hash: bytes) -> str:
        """A second, one-way pseudonym for the audit log: not joinable to the youth table
        without the key, and short enough to read."""
        return self._mac("audit", identity_hash.hex()).hex()[:24]
