"""Who is sent what when a partner has retired or is no longer in the region config:
the notices are decided without I/O, so these rules are checked here directly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.announce import match_ended_event, match_event
from shared.index.domain import Contact, StoredMelding
from shared.index.participants import participant
from shared.region.model import RegionConfig, parse_region
from tests.support import region_document

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def _region(*retired: str, without: str = "") -> RegionConfig:
    document = region_document("u")
    document["partner"] = [p for p in document["partner"] if p["id"] != without]
    for partner in document["partner"]:
        partner["retired"] = partner["id"] in retired
    return parse_region(document)


def _melding(id: int, partner: str, *, active: bool = True) -> StoredMelding:
    return StoredMelding(
        id, partner, f"R-{id}", active, T0, Contact("A. Jansen", f"r{id}@x.example", None)
    )


def test_a_partner_takes_part_unless_retired_or_gone() -> None:
    region = _region("huisarts", without="jgz")
    assert region.takes_part("school")
    assert not region.takes_part("huisarts")
    assert not region.takes_part("jgz")
    assert not _region().partners_by_id["huisarts"].retired  # the default


def test_a_retired_partner_is_shown_by_name_and_sector_and_sent_nothing() -> None:
    retired = participant(_region("huisarts"), _melding(1, "huisarts", active=False))
    assert (retired.organisation, retired.sector) == ("Huisartsenpraktijk West", "zorg")
    assert not retired.receives_notices
    gone = participant(_region(without="huisarts"), _melding(1, "huisarts"))
    assert (gone.organisation, gone.sector) == ("huisarts", "onbekend")
    assert not gone.receives_notices
    assert participant(_region(), _melding(1, "huisarts")).receives_notices


def test_a_retired_partners_archive_signals_but_only_its_reporter_hears_of_it() -> None:
    region = _region("huisarts")
    archived = participant(region, _melding(1, "huisarts", active=False))
    newcomer = participant(region, _melding(2, "school"))
    event = match_event(
        match_id=uuid.uuid4(),
        newcomer=newcomer,
        counterparts=[archived],
        lead=None,
        municipality=region.municipalities_by_code["0363"],
    )
    assert [n.partner_id for n in event.notices] == ["school"]
    [counterpart] = event.notices[0].body["counterparts"]
    assert (counterpart["organisation"], counterpart["sector"]) == (
        "Huisartsenpraktijk West",
        "zorg",
    )
    reporters = {e.to for e in event.emails if e.template == "match_reporter"}
    assert reporters == {"r1@x.example", "r2@x.example"}


def test_match_ended_goes_to_each_remaining_partner_that_takes_part() -> None:
    region = _region("huisarts")
    match_id = uuid.uuid4()
    event = match_ended_event(
        match_id=match_id,
        remaining=[
            participant(region, _melding(1, "school")),
            participant(region, _melding(2, "huisarts")),
        ],
    )
    assert [(n.partner_id, n.body) for n in event.notices] == [
        ("school", {"type": "match.ended", "match_id": str(match_id), "melding_ref": "R-1"})
    ]
    assert event.emails == []
