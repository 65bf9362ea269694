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

    def parent_by_bsn(self, bsn: str) -> bytes:
        """A parent in the family facts: comparable between youths, never readable."""
        return self._mac("parent-bsn", bsn)

    def address_by_bag_id(self, bag_id: str) -> bytes:
        return self._mac("address-bag", bag_id)

    def seal_bsn(self, nonce: str, bsn: str) -> bytes:
        """The BSN of an unanswered person.lookup, kept only so the lookup can be sent
        again: XOR with a keystream drawn from the key and a nonce used once (the
        lookup_id). Readable only with the key; deleted when the facts arrive."""
        data = bsn.encode()
        stream = self._mac("lookup-bsn", nonce)
        if len(data) > len(stream):
            raise ValueError("a BSN is 9 digits")
        return bytes(a ^ b for a, b in zip(data, stream, strict=False))

    def open_bsn(self, nonce: str, sealed: bytes) -> str:
        stream = self._mac("lookup-bsn", nonce)
        return bytes(a ^ b for a, b in zip(sealed, stream, strict=False)).decode()

    def audit_ref(self, identity_hash: bytes) -> str:
        """A second, one-way pseudonym for the audit log: not joinable to the youth table
        without the key, and short enough to read."""
        return self._mac("audit", identity_hash.hex()).hex()[:24]
