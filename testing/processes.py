"""Starting the system's processes as the benchmark and the chaos run do: `python -m
services.<name>` (or another module of this repository) from the repository's root,
with the given settings on top of this process's environment."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

# The services that consume and publish (the portal serves people and runs apart).
SERVICES: tuple[str, ...] = ("ingest", "matcher", "notifier", "retention")
REPO_ROOT = Path(__file__).resolve().parent.parent

Output = IO[bytes] | int | None


async def start_module(
    module: str,
    *args: str,
    env: Mapping[str, str],
    stdout: Output = None,
    stderr: Output = None,
) -> asyncio.subprocess.Process:
    """`python -m module args` in the repository's root, without a stdin; `stdout` and
    `stderr` as for `asyncio.create_subprocess_exec` (None: this process's own)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )
