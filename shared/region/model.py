"""The region config (TOML): municipalities, partners and the lead/informing rules."""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Sector(StrEnum):
    JEUGDHULP = "jeugdhulp"
    JGZ = "jgz"
    ZORG = "zorg"
    ONDERWIJS = "onderwijs"
    WMO = "wmo"
    WERK_INKOMEN = "werk_inkomen"
    POLITIE_JUSTITIE = "politie_justitie"
    GEMEENTE = "gemeente"


class Role(StrEnum):
    REPORTER = "reporter"
    POPULATION_REGISTER = "population_register"


class Login(StrEnum):
    """How a partner's system logs in to the broker."""

    PASSWORD = "password"  # noqa: S105 - a kind of login, not a secret
    CERTIFICATE = "certificate"


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionRules(_Frozen):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    regie_deadline_days: Annotated[int, Field(ge=1, le=365)] = 14
    regie_priority: list[Sector] | None = None
    inform_deadline_days: Annotated[int, Field(ge=1, le=365)] = 14
    # Fair shares: a partner's live messages beyond this rate (per second, per ingest
    # replica, after a burst of `live_burst`) wait in the bulk lane behind other
    # partners' live traffic (docs/architecture.md, "Lanes").
    live_rate: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    live_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 500


class Municipality(_Frozen):
    code: Annotated[str, Field(pattern=r"^\d{4}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    coordinator_email: Annotated[str, Field(pattern=_EMAIL, max_length=254)]


class Partner(_Frozen):
    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{2,40}$")]
    broker_user: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sector: Sector
    roles: Annotated[list[Role], Field(min_length=1)]
    # "certificate": broker_user is the common name of the partner's client
    # certificate; `region apply` creates that user without a password.
    login: Login = Login.PASSWORD
    # A partner that left the region stays in the file, so that its archived meldingen
    # keep its name and sector; it may send nothing and is sent no notices.
    retired: bool = False

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.value for r in self.roles)


class RegionConfig(_Frozen):
    region: RegionRules
    municipality: Annotated[list[Municipality], Field(min_length=1)]
    partner: Annotated[list[Partner], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_keys(self) -> RegionConfig:
        for label, values in (
            ("municipality code", [m.code for m in self.municipality]),
            ("partner id", [p.id for p in self.partner]),
            ("partner broker_user", [p.broker_user for p in self.partner]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{label} used more than once: {', '.join(dupes)}")
        return self

    @cached_property
    def partners_by_id(self) -> dict[str, Partner]:
        return {p.id: p for p in self.partner}

    @cached_property
    def partners_by_broker_user(self) -> dict[str, Partner]:
        return {p.broker_user: p for p in self.partner}

    @cached_property
    def municipalities_by_code(self) -> dict[str, Municipality]:
        return {m.code: m for m in self.municipality}

    def takes_part(self, partner_id: str) -> bool:
        """Whether the partner is in the file and not retired."""
        partner = self.partners_by_id.get(partner_id)
        return partner is not None and not partner.retired


class RegionConfigError(ValueError):
    """A region file that cannot be applied; the message says what to fix."""


# The key that names an entry of a list in the file, besides its position.
_ENTRY_NAMES = {"partner": "id", "municipality": "code"}


def error_location(loc: tuple[int | str, ...], data: Any) -> str:
    """Where in the file an error is, as the operator counts: pydantic's
    ('partner', 2, 'sector') becomes `partner[3] (id "jt-noord").sector`."""
    where = ""
    node, list_key = data, ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part + 1}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name_key = _ENTRY_NAMES.get(list_key)
            if name_key and isinstance(node, dict) and isinstance(node.get(name_key), str):
                where += f' ({name_key} "{node[name_key]}")'
        else:
            where += f".{part}" if where else part
            node = node.get(part) if isinstance(node, dict) else None
            list_key = part
    return where or "(file)"


def parse_region(data: dict[str, Any]) -> RegionConfig:
    try:
        return RegionConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_input=False, include_url=False):
            lines.append(f"  {error_location(err['loc'], data)}: {err['msg']}")
        raise RegionConfigError("the region config is not valid:\n" + "\n".join(lines)) from None


def load_region_file(path: Path) -> RegionConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegionConfigError(f"no such file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegionConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_region(data)
