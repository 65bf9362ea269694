"""Free TCP ports for the tests, the benchmark and the chaos run, safe beside parallel
test workers.

A port from the kernel's range for outgoing connections (32768–60999 on Linux) can be
taken by any client socket on the machine the moment a test lets go of it: a proxy
switched off and on again, or a port picked now and bound by a service a second later,
then meets "address already in use". So ports come from below that range, and each
pytest-xdist worker picks from a block of its own (outside pytest: the first block).
"""

from __future__ import annotations

import os
import random
import socket

_FIRST_PORT = 10_000
_BLOCK = 2_000  # ten workers' blocks end at 29,999, below the outgoing range


def free_port() -> int:
    """A port nothing listens on now, from this worker's block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = _FIRST_PORT + (int(worker or 0) % 10) * _BLOCK
    for port in random.sample(range(first, first + _BLOCK), _BLOCK):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {first}–{first + _BLOCK - 1}")
