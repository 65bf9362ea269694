"""The region file: validation errors name the entry as the file counts it, and the
operations guide's reference lists every key the model knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.region.model import (
    Municipality,
    Partner,
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


@pytest.mark.parametrize("model", [RegionRules, Municipality, Partner])
def test_the_reference_lists_every_key(model: Any) -> None:
    section = REFERENCE[REFERENCE.index("### Reference of the region file") :]
    for key in model.model_fields:
        assert f"| `{key}` |" in section, f"{model.__name__}.{key} is missing from the reference"
