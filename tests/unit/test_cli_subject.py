"""`subject export|erase` check the BSN before anything else: a mistyped one is
named as such, never answered with 'nothing is stored on this youth'."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import main
from shared.contract.validation import example_bsn

# Nothing listens here: a command that got past the check would fail to connect.
UNREACHABLE = {"VI_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"}


@pytest.mark.parametrize("bsn", ["123456789", "12345678", "1234567890", "12345678a", "000000000"])
@pytest.mark.parametrize("command", [["export"], ["erase", "--yes"], ["erase"]])
def test_an_invalid_bsn_is_named_before_anything_is_looked_up(command: list[str], bsn: str) -> None:
    result = CliRunner().invoke(main, ["subject", *command, "--bsn", bsn], env=UNREACHABLE)
    assert result.exit_code == 2, result.output
    assert "not a valid BSN: it must be 9 digits that pass the 11-proef" in result.output
    assert "Erase everything" not in result.output  # refused before the confirmation
    assert "nothing is stored" not in result.output and "PostgreSQL" not in result.output


def test_a_valid_bsn_gets_past_the_check() -> None:
    result = CliRunner().invoke(
        main, ["subject", "export", "--bsn", example_bsn(1)], env=UNREACHABLE
    )
    assert result.exit_code == 1
    assert "cannot reach PostgreSQL" in result.output
