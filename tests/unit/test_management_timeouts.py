"""The management client waits longer once for a slow read, and never repeats a write."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from shared.amqp.management import Management, ManagementError


class _SlowFirstAnswer(BaseHTTPRequestHandler):
    """Answers every request, the first one of each method only after a pause."""

    seen: ClassVar[dict[str, int]] = {}

    def _answer(self) -> None:
        count = self.seen.get(self.command, 0)
        self.seen[self.command] = count + 1
        if count == 0:
            time.sleep(0.6)
        body = json.dumps({"method": self.command, "count": count + 1}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting for the slow answer, as it should

    do_GET = _answer
    do_PUT = _answer

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def slow_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Management, dict[str, int]]]:
    seen: dict[str, int] = {}
    handler = type("Handler", (_SlowFirstAnswer,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(Management, "TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(Management, "READ_RETRY_TIMEOUT_SECONDS", 5.0)
    try:
        yield Management(f"http://guest:guest@127.0.0.1:{server.server_port}"), seen
    finally:
        server.shutdown()
        server.server_close()


async def test_a_slow_read_is_asked_again_with_a_longer_wait(
    slow_api: tuple[Management, dict[str, int]],
) -> None:
    api, seen = slow_api
    answer = await api.call("GET", "/overview")
    assert answer == {"method": "GET", "count": 2}
    assert seen["GET"] == 2


async def test_a_slow_write_is_not_repeated(slow_api: tuple[Management, dict[str, int]]) -> None:
    api, seen = slow_api
    with pytest.raises(ManagementError, match="cannot reach"):
        await api.call("PUT", "/vhosts/x", {})
    assert seen["PUT"] == 1
