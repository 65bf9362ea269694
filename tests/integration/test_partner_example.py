"""The example partner client is what a partner integrator copies: it must run on its
own, with aio-pika and nothing of the index's code, against the real broker (what it
may import, and its retries, are checked in tests/unit/test_partner_example.py)."""

from __future__ import annotations

import asyncio
import sys
import sysconfig
from pathlib import Path

from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import RegionUnderTest, register_body, valid_bsn

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "partner_client.py"

# Runs the example with Python's isolated mode (-I: no PYTHONPATH, no script or working
# directory on the path) and without `site` (-S: the project's editable install is a
# .pth file, which is then not read). Only the installed libraries' directory is added.
BOOTSTRAP = """
import importlib.util, runpy, sys
sys.path.append(sys.argv[1])
for own in ("shared", "services", "cli", "tests"):
    assert importlib.util.find_spec(own) is None, own + " is importable"
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


async def run_example(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        "-c",
        BOOTSTRAP,
        sysconfig.get_paths()["purelib"],
        str(EXAMPLE),
        *args,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_example_registers_on_its_own_and_prints_receipt_and_match(
    pipeline: System,
    partners: dict[str, PartnerClient],
    test_region: RegionUnderTest,
    tmp_path: Path,
) -> None:
    bsn = valid_bsn(7400)
    team = partners["jeugdteam"]
    earlier = await team.send(register_body("EX-0", bsn=bsn))
    assert (await team.receipt_for(earlier)).body["status"] == "accepted"

    await partners["school"].close()  # the example is to be the mailbox's only reader
    url = test_region.partner_url("school")  # the login is taken from the URL
    args = ["--url", url, "--partner", "school", "--ref", "EX-1", "--bsn", bsn]
    status, out, err = await run_example(tmp_path, *args, "--wait", "1.5")
    assert status == 0, err
    assert "receipt: accepted" in out
    assert '"in_reply_to"' in out and '"EX-1"' in out
    assert "match.notice" in out and "Jeugdteam Noord" in out
    assert bsn not in out

    # A refused registration exits non-zero and says why.
    status, out, err = await run_example(tmp_path, *args, "--wait", "0")
    assert status == 1, err
    assert "receipt: rejected" in out and "duplicate_ref" in out
