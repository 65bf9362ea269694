"""`region show` prints the applied config; `region apply` names a bad entry by its
position counted from 1 and by its id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from tests.support import RegionUnderTest, run_cli

REGION_FILE = """
[region]
name = "Regio Proef"
inform_deadline_days = 10

[[municipality]]
code = "0363"
name = "Amsterdam"
coordinator_email = "regie@amsterdam.example"

[[partner]]
id = "school"
broker_user = "{prefix}-school"
name = "Basisschool De Regenboog"
sector = "onderwijs"
roles = ["reporter"]

[[partner]]
id = "jt-noord"
broker_user = "{prefix}-jeugdteam"
name = "Jeugdteam Noord"
sector = "{sector}"
roles = ["reporter", "{role}"]
"""


def _region_file(tmp_path: Path, region: RegionUnderTest, **values: str) -> Path:
    path = tmp_path / "region.toml"
    fields = {"prefix": region.user_prefix, "sector": "jeugdhulp", "role": "reporter", **values}
    path.write_text(REGION_FILE.format(**fields), encoding="utf-8")
    return path


async def test_region_show_prints_the_applied_config(test_region: RegionUnderTest) -> None:
    shown = await run_cli(test_region, "region", "show")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert text.startswith("revision 1, applied 20")
    assert "  name                  Testregio" in text
    assert "  regie_priority        -" in text  # not set: no priority order
    assert "[[municipality]] (3)" in text and "regie@utrecht.example" in text
    assert "[[partner]] (5)" in text
    partner_lines = [line.split() for line in text.splitlines() if "reporter" in line]
    assert ["jeugdteam", f"{test_region.user_prefix}-jeugdteam", "Jeugdteam", "Noord"] == (
        partner_lines[1][:4]
    )

    as_json = json.loads((await run_cli(test_region, "region", "show", "--json")).stdout)
    assert as_json["revision"] == 1
    assert as_json["config"] == test_region.region.model_dump(mode="json")


async def test_region_show_follows_apply_and_says_when_nothing_is_applied(
    test_region: RegionUnderTest, db: asyncpg.Connection[Any], tmp_path: Path
) -> None:
    applied = await run_cli(
        test_region, "region", "apply", str(_region_file(tmp_path, test_region))
    )
    assert applied.exit_code == 0, applied.output
    doc = json.loads((await run_cli(test_region, "region", "show", "--json")).stdout)
    assert doc["revision"] == 2
    assert doc["config"]["region"] == {
        "name": "Regio Proef",
        "regie_deadline_days": 14,  # the default
        "regie_priority": None,
        "inform_deadline_days": 10,
        "family_match": ["parent"],  # the default
        "excluded_addresses": [],
        "live_rate": 50.0,  # the default
        "live_burst": 500,  # the default
    }
    assert [p["id"] for p in doc["config"]["partner"]] == ["school", "jt-noord"]

    await db.execute("DELETE FROM region_config")
    missing = await run_cli(test_region, "region", "show")
    assert missing.exit_code == 1
    assert missing.output.strip() == (
        "Error: no region config is applied yet: run `verwijsindex region apply FILE`"
    )


async def test_region_apply_names_a_bad_entry_by_position_from_one_and_id(
    test_region: RegionUnderTest, tmp_path: Path
) -> None:
    path = _region_file(tmp_path, test_region, sector="zorgverzekeraar", role="boss")
    refused = await run_cli(test_region, "region", "apply", str(path))
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert lines[0] == "Error: the region config is not valid:"
    assert lines[1].startswith('  partner[2] (id "jt-noord").sector: Input should be ')
    assert lines[2].startswith('  partner[2] (id "jt-noord").roles[2]: Input should be ')
    doc = json.loads((await run_cli(test_region, "region", "show", "--json")).stdout)
    assert doc["revision"] == 1  # a bad file changes nothing
