"""The region config (TOML): municipalities, partners and the lead/informing rules."""

from __future__ import annotations

import tomllib
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)


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


class Channel(StrEnum):
    """How a partner takes part in the index."""

    AMQP = "amqp"  # its own system publishes with its own broker login
    PORTAL = "portal"  # its professionals use the web portal, which publishes for it


# The portal's own mailbox is partner.portal (routing key "portal"), so no partner may
# have this id.
PORTAL_ID = "portal"


class Login(StrEnum):
    """How a partner's system logs in to the broker."""

    PASSWORD = "password"  # noqa: S105 - a kind of login, not a secret
    CERTIFICATE = "certificate"


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyRelation(StrEnum):
    """What two youths may share to form a family match (contract §8)."""

    PARENT = "parent"
    ADDRESS = "address"


def _bag_id(value: str) -> str:
    if not (len(value) == 16 and value.isascii() and value.isdigit()):
        raise ValueError("must be a BAG id of 16 digits")
    return value


BagId = Annotated[str, AfterValidator(_bag_id)]


class RegionRules(_Frozen):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    regie_deadline_days: Annotated[int, Field(ge=1, le=365)] = 14
    regie_priority: list[Sector] | None = None
    inform_deadline_days: Annotated[int, Field(ge=1, le=365)] = 14
    # Family matching: on a shared parent by default; [] turns it off.
    family_match: list[FamilyRelation] = [FamilyRelation.PARENT]
    # BAG ids of addresses that never form an address match (institutions the
    # register does not mark as such).
    excluded_addresses: list[BagId] = []

    @model_validator(mode="after")
    def _no_repeats(self) -> RegionRules:
        for label, values in (
            ("family_match", [r.value for r in self.family_match]),
            ("excluded_addresses", list(self.excluded_addresses)),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"{label} names a value more than once")
        return self

    @property
    def family_matching(self) -> bool:
        return bool(self.family_match)

    # Fair shares: a partner's live messages beyond this rate (per second, per ingest
    # replica, after a burst of `live_burst`) wait in the bulk lane behind other
    # partners' live traffic (docs/architecture.md, "Lanes").
    live_rate: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    live_burst: Annotated[int, Field(ge=1, le=1_000_000)] = 500


class Municipality(_Frozen):
    code: Annotated[str, Field(pattern=r"^\d{4}$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    coordinator_email: Annotated[str, Field(pattern=_EMAIL, max_length=254)]


_BrokerUser = Annotated[str, Field(min_length=1, max_length=200)]


class Partner(_Frozen):
    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{2,40}$")]
    # Required on the "amqp" channel; a "portal" partner has none (the portal's login
    # publishes for it).
    broker_user: _BrokerUser | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sector: Sector
    roles: Annotated[list[Role], Field(min_length=1)]
    # "certificate": broker_user is the common name of the partner's client
    # certificate; `region apply` creates that user without a password.
    login: Login = Login.PASSWORD
    # A partner that left the region stays in the file, so that its archived meldingen
    # keep its name and sector; it may send nothing and is sent no notices.
    retired: bool = False
    channel: Channel = Channel.AMQP

    @model_validator(mode="after")
    def _fits_channel(self) -> Partner:
        if self.id == PORTAL_ID:
            raise ValueError(
                f'the id "{PORTAL_ID}" is reserved for the portal\'s own mailbox '
                f"(partner.{PORTAL_ID}): choose another id"
            )
        if self.channel is Channel.AMQP and self.broker_user is None:
            raise ValueError(
                'broker_user is missing: a partner on channel "amqp" (the default) '
                'logs in to the broker itself; set channel = "portal" for a partner '
                "that uses the web portal"
            )
        if self.channel is Channel.PORTAL and (
            self.broker_user is not None or self.login is not Login.PASSWORD
        ):
            raise ValueError(
                'a partner with channel = "portal" has no broker_user and no login: the '
                "portal publishes for it with its own login ([portal] broker_user)"
            )
        return self

    @property
    def own_broker_user(self) -> str:
        """The broker login of a partner whose own system publishes (channel "amqp")."""
        if self.broker_user is None:
            raise ValueError(f"partner {self.id!r} uses the portal: it has no broker login")
        return self.broker_user

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.value for r in self.roles)


class PortalGateway(_Frozen):
    """The web portal as a sender on the bus (`[portal]`): its own broker login, with
    which it publishes on behalf of the partners on channel "portal"."""

    broker_user: _BrokerUser
    # "certificate": broker_user is the common name of the portal's client certificate;
    # `region apply` creates that user without a password.
    login: Login = Login.PASSWORD


class RegionConfig(_Frozen):
    region: RegionRules
    municipality: Annotated[list[Municipality], Field(min_length=1)]
    partner: Annotated[list[Partner], Field(min_length=1)]
    portal: PortalGateway | None = None

    @model_validator(mode="after")
    def _unique_keys(self) -> RegionConfig:
        logins = [p.broker_user for p in self.partner if p.broker_user is not None]
        for label, values in (
            ("municipality code", [m.code for m in self.municipality]),
            ("partner id", [p.id for p in self.partner]),
            ("partner broker_user", logins),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{label} used more than once: {', '.join(dupes)}")
        if self.portal is not None and self.portal.broker_user in logins:
            raise ValueError(
                f"[portal] broker_user {self.portal.broker_user!r} is also a partner's "
                "broker_user: the portal needs a login of its own"
            )
        on_portal = [p.id for p in self.partner if p.channel is Channel.PORTAL]
        if on_portal and self.portal is None:
            raise ValueError(
                f'partners with channel = "portal" ({", ".join(on_portal)}) need a '
                "[portal] section with the portal's broker_user"
            )
        return self

    @property
    def mailboxes(self) -> list[str]:
        """The ids whose partner.<id> queue the system declares: every partner's, and
        the portal's own when the file has a [portal] section."""
        ids = [p.id for p in self.partner]
        return ids if self.portal is None else [*ids, PORTAL_ID]

    @property
    def portal_mailboxes(self) -> list[str]:
        """The ids of the partner.<id> queues the portal reads: its own and those of
        the partners on channel "portal"."""
        return [PORTAL_ID, *(p.id for p in self.partner if p.channel is Channel.PORTAL)]

    @cached_property
    def partners_by_id(self) -> dict[str, Partner]:
        return {p.id: p for p in self.partner}

    @cached_property
    def partners_by_broker_user(self) -> dict[str, Partner]:
        return {p.broker_user: p for p in self.partner if p.broker_user is not None}

    @cached_property
    def municipalities_by_code(self) -> dict[str, Municipality]:
        return {m.code: m for m in self.municipality}

    @cached_property
    def population_registers(self) -> list[Partner]:
        """The partners that answer person.lookup (retired ones are sent nothing)."""
        return [p for p in self.partner if Role.POPULATION_REGISTER in p.roles and not p.retired]

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
