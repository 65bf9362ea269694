"""An SMTP server that keeps every e-mail it receives, run as a process of its own
beside the services (`python -m chaos.smtp_sink --port P --out FILE`).

The notifier sends the run's e-mails here by SMTP, as in production. Every received
message is appended to FILE whole, so the run can count how many times each
`Message-ID` arrived: the one thing the index does not promise is that an e-mail is
sent only once.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from aiosmtpd.smtp import SMTP

BOUNDARY = b"\n--chaos-smtp-sink-boundary--\n"


class _Keep:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        # Offered like a production mail server does, so the run exercises the notifier's
        # pipelined sends (aiosmtpd reads pipelined commands fine; it just does not say so).
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self._out.write(bytes(envelope.content) + BOUNDARY)
        self._out.flush()
        return "250 OK"


async def _serve(port: int, out: Path) -> None:
    with out.open("ab") as handle:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(_Keep(handle), hostname="chaos-sink"), "127.0.0.1", port
        )
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("ready", flush=True)
        await stop.wait()
        server.close()
        await server.wait_closed()


def read_messages(path: Path) -> Iterator[email.message.EmailMessage]:
    """Every e-mail the sink kept, in order of arrival."""
    if not path.exists():
        return
    for raw in path.read_bytes().split(BOUNDARY):
        if raw.strip():
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, email.message.EmailMessage)
            yield message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.out))


if __name__ == "__main__":
    main()
