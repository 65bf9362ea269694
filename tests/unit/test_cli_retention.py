"""`retention run --now` far ahead of the clock asks first, before touching anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cli.main import main

# Nothing listens here: a sweep that got past the question would fail to connect.
UNREACHABLE = {"VI_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"}


def _sweep(days_ahead: float, *options: str, answer: str | None = None) -> tuple[int, str]:
    now = (datetime.now(UTC) + timedelta(days=days_ahead)).isoformat()
    result = CliRunner().invoke(
        main, ["retention", "run", "--now", now, *options], env=UNREACHABLE, input=answer
    )
    return result.exit_code, result.output


def test_without_a_terminal_it_refuses_and_says_how_to_go_on() -> None:
    code, output = _sweep(400)
    assert code == 1
    assert output.splitlines() == [
        "Error: --now is 400 days ahead of the clock: what is due by then ends for real and "
        "partners are told.",
        "Add --yes to sweep anyway, or look first with --dry-run.",
    ]


def test_at_a_terminal_it_asks_and_a_no_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cli.retention._at_a_terminal", lambda: True)
    code, output = _sweep(30, answer="n\n")
    assert code == 1
    assert "Sweep anyway? [y/N]" in output and "Aborted!" in output
    assert "cannot reach PostgreSQL" not in output


@pytest.mark.parametrize(
    ("days_ahead", "options"), [(0.9, ()), (-400, ()), (400, ("--yes",)), (400, ("--dry-run",))]
)
def test_it_does_not_ask_within_a_day_in_the_past_with_yes_or_for_a_dry_run(
    days_ahead: float, options: tuple[str, ...]
) -> None:
    code, output = _sweep(days_ahead, *options)
    assert code == 1 and "cannot reach PostgreSQL" in output  # went on to sweep
