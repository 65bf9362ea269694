"""The test session's logging: services started in-process log as a started service
does, never into the output of a CLI command that a test runs beside them."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

from shared.logs import get_logger


def test_a_service_log_line_goes_to_stderr_not_to_the_current_stdout() -> None:
    # `run_cli` swaps sys.stdout for the command's output while services keep logging.
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        get_logger("probe").error("probe_line")
    assert out.getvalue() == ""
    assert '"event": "probe_line"' in err.getvalue()
