"""A tiny HTTP endpoint per service: /healthz, /readyz and Prometheus /metrics.

Plain asyncio streams: three GET routes do not justify a web framework.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


class HealthServer:
    def __init__(self, service: str, readiness: ReadinessCheck) -> None:
        self._service = service
        # Replaceable: a service answers /readyz while it still waits for its backends.
        self.readiness = readiness
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._handle, host, port)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path, *_ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            path = path.split("?", 1)[0]
            if method != "GET":
                await _respond(writer, 405, b"", "text/plain")
            elif path == "/healthz":
                await _respond(
                    writer,
                    200,
                    _json({"service": self._service, "alive": True}),
                    "application/json",
                )
            elif path == "/readyz":
                checks = await self.readiness()
                ready = all(checks.values())
                await _respond(
                    writer,
                    200 if ready else 503,
                    _json({"service": self._service, "ready": ready, "checks": checks}),
                    "application/json",
                )
            elif path == "/metrics":
                await _respond(writer, 200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                await _respond(writer, 404, b"", "text/plain")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()
