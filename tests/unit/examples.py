"""The example partner message the contract unit tests start from."""

from __future__ import annotations

from typing import Any


def register_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "melding.register",
        "melding_ref": "R-2026-0001",
        "youth": {"bsn": "111222333", "birth_date": "2014-05-01", "municipality": "0363"},
        "reporter": {
            "name": "J. de Vries",
            "email": "j.devries@school.example",
            "phone": "+31201234567",
        },
        "reported_at": "2026-11-28T10:00:00+01:00",
    }
    body.update(overrides)
    return body
