"""The documents every harness starts from: the small test region (its partners'
broker logins named from a prefix) and a partner's melding.register body. Used by the
tests and the chaos run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def region_document(user_prefix: str, **rules: Any) -> dict[str, Any]:
    """A small region: three municipalities, partners of several sectors, a register."""
    partners = [
        ("school", "Basisschool De Regenboog", "onderwijs", ["reporter"]),
        ("jeugdteam", "Jeugdteam Noord", "jeugdhulp", ["reporter"]),
        ("jgz", "GGD Jeugdgezondheidszorg", "jgz", ["reporter"]),
        ("huisarts", "Huisartsenpraktijk West", "zorg", ["reporter"]),
        ("brp", "Basisregistratie Personen", "gemeente", ["population_register"]),
    ]
    return {
        "region": {
            "name": "Testregio",
            "regie_deadline_days": 14,
            "inform_deadline_days": 14,
            **rules,
        },
        "municipality": [
            {"code": "0363", "name": "Amsterdam", "coordinator_email": "regie@amsterdam.example"},
            {"code": "0599", "name": "Rotterdam", "coordinator_email": "regie@rotterdam.example"},
            {"code": "0344", "name": "Utrecht", "coordinator_email": "regie@utrecht.example"},
        ],
        "partner": [
            {
                "id": pid,
                "broker_user": f"{user_prefix}-{pid}",
                "name": name,
                "sector": sector,
                "roles": roles,
            }
            for pid, name, sector, roles in partners
        ],
    }


def register_body(
    ref: str,
    *,
    bsn: str | None = None,
    birth_date: str = "2014-05-01",
    municipality: str = "0363",
    reporter: str = "J. de Vries",
    email: str = "j.devries@school.example",
    reported_at: str | None = None,
    **youth: Any,
) -> dict[str, Any]:
    youth_doc: dict[str, Any] = {"birth_date": birth_date, "municipality": municipality, **youth}
    if bsn is not None:
        youth_doc["bsn"] = bsn
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": youth_doc,
        "reporter": {"name": reporter, "email": email, "phone": "+31201234567"},
        "reported_at": reported_at or datetime.now(UTC).isoformat(),
    }
