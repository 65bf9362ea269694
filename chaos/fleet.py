"""The service processes: replicas of `python -m services.<name>`, each writing its JSON
log lines to a file of its own; SIGKILL at random and start again, like a supervisor
(systemd, Kubernetes) would."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from testing.processes import SERVICES, start_module


@dataclass
class Slot:
    """One replica: the process now running in it, and every log file it wrote."""

    service: str
    index: int
    process: asyncio.subprocess.Process | None = None
    incarnation: int = 0
    killed: int = 0
    expected_exit: bool = False
    started_at: float = 0.0
    logs: list[Path] = field(default_factory=list)
    _log_handle: IO[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None


@dataclass(frozen=True)
class Exit:
    slot: str
    pid: int
    returncode: int
    expected: bool
    at: float
    # A process that exits before it started failed to start (a service waits for a
    # backend that is down, so this is a failure too); one that had started died.
    started: bool
    last_line: str


class Fleet:
    def __init__(self, env: dict[str, str], log_dir: Path, replicas: int) -> None:
        self._env = env
        self._log_dir = log_dir
        self.slots = [Slot(s, i) for s in SERVICES for i in range(replicas)]
        self.exits: list[Exit] = []
        self.kills: list[tuple[float, str]] = []
        self._watchers: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def unexpected_exits(self) -> list[Exit]:
        """Processes that died by themselves after they had started."""
        return [e for e in self.exits if not e.expected and e.started]

    @property
    def start_failures(self) -> list[Exit]:
        return [e for e in self.exits if not e.expected and not e.started]

    async def start_all(self) -> None:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        for slot in self.slots:
            await self._spawn(slot)
        await self.wait_started([s for s in self.slots], timeout=90)

    async def _spawn(self, slot: Slot) -> None:
        slot.incarnation += 1
        path = self._log_dir / f"{slot.name}.{slot.incarnation}.log"
        slot.logs.append(path)
        if slot._log_handle is not None:
            slot._log_handle.close()
        slot._log_handle = path.open("wb")
        slot.expected_exit = False
        slot.process = await start_module(
            f"services.{slot.service}",
            env=self._env,
            stdout=slot._log_handle,
            stderr=slot._log_handle,
        )
        slot.started_at = time.monotonic()
        watcher = asyncio.create_task(self._watch(slot, slot.process))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, slot: Slot, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        expected = slot.expected_exit or self._stopping
        log = slot.logs[-1]
        self.exits.append(
            Exit(
                slot.name,
                process.pid,
                code,
                expected,
                time.time(),
                _has_started(log),
                _last_line(log),
            )
        )
        if not expected and not self._stopping:
            # A process that died by itself is restarted as a supervisor would, and
            # reported as a failure of the run.
            await asyncio.sleep(1.0)
            if not self._stopping and slot.process is process:
                await self._spawn(slot)

    async def wait_started(self, slots: list[Slot], timeout: float) -> None:
        """Until each process logged `service_started` (or died)."""
        deadline = time.monotonic() + timeout
        pending = list(slots)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if s.alive and not _has_started(s.logs[-1])]
            if pending:
                await asyncio.sleep(0.2)
        if pending:
            raise RuntimeError(f"not started within {timeout:.0f} s: {[s.name for s in pending]}")

    async def kill_random(self, rng: random.Random, restart_after: float) -> str | None:
        """SIGKILL one live replica, and start it again after `restart_after` seconds."""
        candidates = [s for s in self.slots if s.alive]
        if not candidates:
            return None
        slot = rng.choice(candidates)
        process = slot.process
        assert process is not None
        slot.expected_exit = True
        slot.killed += 1
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
        self.kills.append((time.time(), slot.name))
        task = asyncio.create_task(self._restart_later(slot, process, restart_after))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return slot.name

    async def _restart_later(
        self, slot: Slot, process: asyncio.subprocess.Process, delay: float
    ) -> None:
        await process.wait()
        await asyncio.sleep(delay)
        if not self._stopping and slot.process is process:
            await self._spawn(slot)

    async def ensure_all_running(self, timeout: float = 60) -> None:
        """Start whatever is down (pending restarts included) and wait until started."""
        for slot in self.slots:
            if not slot.alive:
                await self._spawn(slot)
        await self.wait_started(self.slots, timeout)

    async def stop_all(self, timeout: float = 40.0) -> dict[str, int | None]:
        """SIGTERM (a clean drain), then SIGKILL what is still running. Returns each
        stopped replica's exit code (0 is a clean drain)."""
        self._stopping = True
        running = [s for s in self.slots if s.alive]
        for slot in running:
            assert slot.process is not None
            slot.expected_exit = True
            slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for slot in running:
            assert slot.process is not None
            try:
                await asyncio.wait_for(slot.process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                slot.process.kill()
                await slot.process.wait()
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for slot in self.slots:
            if slot._log_handle is not None:
                slot._log_handle.close()
                slot._log_handle = None
        return {s.name: s.process.returncode if s.process else None for s in running}

    def log_files(self) -> list[Path]:
        return [path for slot in self.slots for path in slot.logs]


def _last_line(path: Path) -> str:
    try:
        lines = path.read_bytes().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1][:300] if lines else ""


def _has_started(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return b'"service_started"' in handle.read()
    except FileNotFoundError:
        return False
