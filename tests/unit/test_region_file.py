"""The region file: validation errors name the entry as the file counts it, and the
operations guide's reference lists every key the model knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.region.model import (
    PORTAL_ID,
    Channel,
    Municipality,
    Partner,
    PortalGateway,
    RegionConfigError,
    RegionRules,
    error_location,
    parse_region,
)
from tests.support import region_document

REFERENCE = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")


def _refusal(document: dict[str, Any]) -> list[str]:
    with pytest.raises(RegionConfigError) as caught:
        parse_region(document)
    first, *lines = str(caught.value).splitlines()
    assert first == "the region config is not valid:"
    return [line.strip() for line in lines]


def test_a_bad_entry_is_named_by_its_position_from_one_and_its_id() -> None:
    doc = region_document("t")
    doc["partner"][2]["sector"] = "zorgverzekeraar"
    doc["partner"][4]["roles"] = ["population_register", "boss"]
    doc["municipality"][1]["code"] = "599"
    [municipality, sector, role] = _refusal(doc)
    assert municipality.startswith('municipality[2] (code "599").code: String should match')
    assert sector.startswith("partner[3] (id \"jgz\").sector: Input should be 'jeugdhulp'")
    assert role.startswith('partner[5] (id "brp").roles[2]: Input should be')


def test_an_entry_without_its_id_is_named_by_position() -> None:
    doc = region_document("t")
    del doc["partner"][0]["id"]
    assert _refusal(doc) == ["partner[1].id: Field required"]


@pytest.mark.parametrize(
    ("loc", "where"),
    [
        ((), "(file)"),
        (("region", "name"), "region.name"),
        (("partner",), "partner"),
        (("partner", 7, "id"), "partner[8].id"),  # beyond the list: position only
    ],
)
def test_error_locations(loc: tuple[int | str, ...], where: str) -> None:
    assert error_location(loc, region_document("t")) == where


def test_a_rule_across_entries_is_reported_for_the_file() -> None:
    doc = region_document("t")
    doc["partner"][1]["id"] = doc["partner"][0]["id"]
    [line] = _refusal(doc)
    assert line.startswith("(file): ") and "partner id used more than once: school" in line


@pytest.mark.parametrize("model", [RegionRules, Municipality, Partner, PortalGateway])
def test_the_reference_lists_every_key(model: Any) -> None:
    section = REFERENCE[REFERENCE.index("### Reference of the region file") :]
    for key in model.model_fields:
        assert f"| `{key}` |" in section, f"{model.__name__}.{key} is missing from the reference"


# --- the portal channel (contract §9) ------------------------------------------------


def _with_portal_school(doc: dict[str, Any], **school: Any) -> dict[str, Any]:
    doc["partner"].append(
        {
            "id": "linde",
            "name": "Basisschool De Linde",
            "sector": "onderwijs",
            "roles": ["reporter"],
            "channel": "portal",
            **school,
        }
    )
    doc["portal"] = {"broker_user": "t-portal"}
    return doc


def test_a_version_1_file_is_on_the_amqp_channel_without_a_portal() -> None:
    config = parse_region(region_document("t"))
    assert {p.channel for p in config.partner} == {Channel.AMQP}
    assert config.portal is None
    assert config.mailboxes == [p.id for p in config.partner]


def test_a_portal_partner_has_no_login_and_the_portal_gets_a_mailbox() -> None:
    config = parse_region(_with_portal_school(region_document("t")))
    school = config.partners_by_id["linde"]
    assert school.channel is Channel.PORTAL and school.broker_user is None
    assert school not in config.partners_by_broker_user.values()
    assert config.mailboxes[-2:] == ["linde", PORTAL_ID]
    assert config.portal_mailboxes == [PORTAL_ID, "linde"]
    with pytest.raises(ValueError, match="uses the portal"):
        _ = school.own_broker_user


def test_a_portal_partner_with_a_broker_user_is_refused() -> None:
    doc = _with_portal_school(region_document("t"), broker_user="linde")
    [line] = _refusal(doc)
    assert line.startswith('partner[6] (id "linde"): Value error, a partner with channel')


def test_an_amqp_partner_without_a_broker_user_is_refused() -> None:
    doc = region_document("t")
    del doc["partner"][1]["broker_user"]
    [line] = _refusal(doc)
    assert 'partner[2] (id "jeugdteam")' in line and "broker_user is missing" in line


def test_no_partner_may_have_the_portal_id() -> None:
    doc = region_document("t")
    doc["partner"][0]["id"] = PORTAL_ID
    [line] = _refusal(doc)
    assert f'partner[1] (id "{PORTAL_ID}")' in line and "reserved" in line


def test_portal_partners_need_the_portal_section() -> None:
    doc = _with_portal_school(region_document("t"))
    del doc["portal"]
    [line] = _refusal(doc)
    assert line.startswith("(file): ") and "need a [portal] section" in line


def test_the_portal_login_is_not_a_partner_login() -> None:
    doc = _with_portal_school(region_document("t"))
    doc["portal"]["broker_user"] = doc["partner"][0]["broker_user"]
    [line] = _refusal(doc)
    assert "the portal needs a login of its own" in line
