"""The services as real subprocesses (`python -m services.<name>`), with their
readiness checked over HTTP and their memory read from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from testing.ports import free_port
from testing.processes import start_module


async def http_status(port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status code of a GET on 127.0.0.1:port (None when nothing answers)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


@dataclass(frozen=True)
class Memory:
    rss_kb: int
    hwm_kb: int


def read_memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM (peak RSS) of a live process, from /proc/<pid>/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if "VmRSS" not in values or "VmHWM" not in values:
        return None
    return Memory(values["VmRSS"], values["VmHWM"])


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / _TICKS, total / _TICKS


def processes_named(*names: str) -> dict[str, list[int]]:
    """Pids by command name (/proc/<pid>/comm), e.g. the broker and the database."""
    found: dict[str, list[int]] = {name: [] for name in names}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in found:
            found[comm].append(int(entry.name))
    return found


# The broker (Erlang VM) and the database, read to show where the CPU goes. On a
# machine that runs other work against them too, their figures include that work.
BACKENDS = {"beam.smp": "rabbitmq", "postgres": "postgresql"}


def backend_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every broker and database process, by pid."""
    found: dict[int, tuple[str, float]] = {}
    for comm, pids in processes_named(*BACKENDS).items():
        for pid in pids:
            used = cpu_seconds(pid)
            if used is not None:
                found[pid] = (BACKENDS[comm], used)
    return found


@dataclass
class CpuMeter:
    """CPU used by each replica (and by the machine) between start() and stop()."""

    services: ServiceSet
    _start: dict[str, float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _self: float = 0.0
    _backends: dict[int, tuple[str, float]] = field(default_factory=dict)

    def start(self) -> None:
        self._start = {r.label: cpu_seconds(r.pid) or 0.0 for r in self.services.replicas}
        self._machine = machine_cpu()
        self._self = cpu_seconds(os.getpid()) or 0.0
        self._backends = backend_cpu()

    def stop(self) -> dict[str, Any]:
        by_service: dict[str, float] = {}
        for replica in self.services.replicas:
            used = (cpu_seconds(replica.pid) or 0.0) - self._start.get(replica.label, 0.0)
            by_service[replica.service] = by_service.get(replica.service, 0.0) + used
        busy, total = machine_cpu()
        machine_busy = busy - self._machine[0]
        elapsed_cpu = total - self._machine[1]
        bench = (cpu_seconds(os.getpid()) or 0.0) - self._self
        # A database process per connection: one that ended meanwhile is not counted
        # (the services' own connections live until after this), one that started is
        # counted whole.
        backends: dict[str, float] = {}
        for pid, (name, used) in backend_cpu().items():
            before = self._backends.get(pid, (name, 0.0))[1]
            backends[name] = backends.get(name, 0.0) + used - before
        return {
            "cpu_seconds": {k: round(v, 2) for k, v in sorted(by_service.items())},
            "backend_cpu_seconds": {k: round(max(v, 0.0), 2) for k, v in backends.items()},
            "bench_process_cpu_seconds": round(bench, 2),
            "machine_cpu_seconds": round(machine_busy, 2),
            "machine_busy_pct": round(100 * machine_busy / elapsed_cpu, 1) if elapsed_cpu else None,
        }


@dataclass
class Replica:
    service: str
    index: int
    process: asyncio.subprocess.Process
    http_port: int
    log_path: Path
    log_file: IO[bytes]
    spawn: Callable[[], Awaitable[Replica]]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def label(self) -> str:
        return f"{self.service}-{self.index}"

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class ServiceFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class _Spawn:
    """Starts one replica (again, if need be) and registers it with its ServiceSet."""

    services: ServiceSet
    name: str
    index: int
    module: str
    args: tuple[str, ...]
    http: bool

    async def __call__(self) -> Replica:
        port = free_port() if self.http else -1
        log_path = self.services.log_dir / f"{self.name}-{self.index}.log"
        log_file = log_path.open("ab")
        env = {**self.services.env, "VI_HTTP_PORT": str(port), "VI_HTTP_HOST": "127.0.0.1"}
        process = await start_module(
            self.module.format(name=self.name),
            *(arg.format(name=self.name) for arg in self.args),
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        replica = Replica(self.name, self.index, process, port, log_path, log_file, self)
        self.services.replicas.append(replica)
        return replica


@dataclass
class ServiceSet:
    """Replicas of the services, started with the given environment."""

    env: Mapping[str, str]
    log_dir: Path
    replicas: list[Replica] = field(default_factory=list)

    async def start(
        self,
        counts: Mapping[str, int],
        *,
        module: str = "services.{name}",
        args: Sequence[str] = (),
        ready_timeout: float = 60.0,
        ready_line: str | None = None,
    ) -> list[Replica]:
        """Start `counts[name]` replicas of each service and wait until all are ready:
        `/readyz` answers 200 or, with `ready_line`, that text appears in the log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for name, count in counts.items():
            for _ in range(count):
                index = sum(1 for r in self.replicas if r.service == name)
                spawn = _Spawn(self, name, index, module, tuple(args), ready_line is None)
                started.append(await spawn())
        await asyncio.gather(*(self._wait_ready(r, ready_timeout, ready_line) for r in started))
        return started

    async def _wait_ready(self, replica: Replica, timeout: float, ready_line: str | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        port_retries = 3
        while True:
            if replica.process.returncode is not None:
                # The free port picked for /readyz was taken before the service bound it.
                if "address already in use" in replica.log_tail() and port_retries > 0:
                    port_retries -= 1
                    replica = await self._respawn(replica)
                    continue
                raise ServiceFailed(
                    f"{replica.label} exited with {replica.process.returncode}:\n"
                    + replica.log_tail()
                )
            if ready_line is not None:
                if ready_line in replica.log_tail(100_000):
                    return
            elif await http_status(replica.http_port, "/readyz") == 200:
                return
            if loop.time() > deadline:
                raise ServiceFailed(f"{replica.label} not ready in {timeout:.0f} s")
            await asyncio.sleep(0.1)

    async def _respawn(self, replica: Replica) -> Replica:
        replica.log_file.close()
        self.replicas.remove(replica)
        return await replica.spawn()

    def check_alive(self) -> None:
        for replica in self.replicas:
            if replica.process.returncode is not None:
                raise ServiceFailed(
                    f"{replica.label} exited with {replica.process.returncode}:\n"
                    + replica.log_tail()
                )

    def memory(self) -> dict[str, Memory]:
        """Current memory of every live replica, by label."""
        found = {}
        for replica in self.replicas:
            mem = read_memory(replica.pid)
            if mem is not None:
                found[replica.label] = mem
        return found

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the services drain), then SIGKILL what is left after `timeout`."""
        running = [r for r in self.replicas if r.process.returncode is None]
        for replica in running:
            with contextlib.suppress(ProcessLookupError):
                replica.process.send_signal(signal.SIGTERM)
        for replica in running:
            try:
                await asyncio.wait_for(replica.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    replica.process.kill()
                await replica.process.wait()
        for replica in self.replicas:
            replica.log_file.close()
        self.replicas.clear()
