"""The gate on aiormq's and pamqp's internals (`shared.amqp.compat`): on the versions
it knows it uses them; on any other it says so once and falls back to the public API,
with which meldingen still go all the way through, on the real broker."""

from __future__ import annotations

import pytest
import structlog

from shared.amqp import compat
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import register_body, valid_bsn

FALLBACK_EVENT = "amqp_internals_unknown_version_using_public_api"


@pytest.fixture
def public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on an aiormq/pamqp release the internals were not written for."""
    monkeypatch.setattr(compat, "INTERNALS", False)
    monkeypatch.setattr(compat, "_reported", False)


def test_the_installed_versions_are_known_so_the_internals_are_used() -> None:
    assert set(compat.INSTALLED) == {"aiormq", "pamqp"}
    assert compat.unknown_versions(compat.INSTALLED) == {}
    assert compat.INTERNALS is True
    with structlog.testing.capture_logs() as logs:
        compat.report_fallback()
    assert logs == []


def test_another_minor_release_or_a_missing_package_is_unknown() -> None:
    assert compat.unknown_versions({"aiormq": "7.2.9", "pamqp": "4.0.3"}) == {}
    assert compat.unknown_versions({"aiormq": "7.3.0", "pamqp": "4.0.1"}) == {"aiormq": "7.3.0"}
    assert compat.unknown_versions({"aiormq": "7.2.4", "pamqp": "4.1.0"}) == {"pamqp": "4.1.0"}
    assert compat.unknown_versions({"aiormq": "missing", "pamqp": "14.0.1"}) == {
        "aiormq": "missing",
        "pamqp": "14.0.1",
    }


def test_the_fallback_is_reported_in_one_line(public_api: None) -> None:
    with structlog.testing.capture_logs() as logs:
        compat.report_fallback()
        compat.report_fallback()
    assert [entry["event"] for entry in logs] == [FALLBACK_EVENT]
    assert logs[0]["installed"] == compat.INSTALLED


async def test_on_the_public_api_two_partners_are_still_matched_and_told(
    public_api: None, pipeline: System, partners: dict[str, PartnerClient]
) -> None:
    school, team = partners["school"], partners["jeugdteam"]
    bsn = valid_bsn(7654321)
    with structlog.testing.capture_logs() as logs:
        first = await school.send(register_body("S-1", bsn=bsn))
        receipt = await school.receipt_for(first)
        assert receipt.body["status"] == "accepted", receipt.body

        second = await team.send(register_body("T-1", bsn=bsn))
        by_type = {m.body["type"]: m.body for m in await team.collect(2)}
        assert by_type["receipt"]["status"] == "accepted"
        assert by_type["receipt"]["in_reply_to"] == second
        assert by_type["match.notice"]["melding_ref"] == "T-1"
        assert (await school.next()).body["type"] == "match.notice"

    # The consumers ask only the public API whether they are registered.
    for runtime in pipeline.runtimes:
        assert all([await consumer.is_consuming() for consumer in runtime.consumers])
    # The public API was the path taken, and it was said once, when it was first taken.
    assert compat.INTERNALS is False
    assert compat._reported is True
    assert FALLBACK_EVENT not in [entry["event"] for entry in logs]
