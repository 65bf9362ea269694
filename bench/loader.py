"""The loading partner of bench/lanes.py, as a process of its own: it publishes its
load as fast as the broker confirms and counts the receipts in its own mailbox, so
that the benchmark process, which times the live partner, is not the one busy with
the load. Prints one JSON line: when it started, its last receipt and the statuses
(monotonic clock, which all processes of the machine share).

    python -m bench.loader PARTNER_URL SINK_URL MAILBOX USER_ID TAG COUNT ROUTING_KEY
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime

from bench.traffic import Sink, wait_until
from shared.amqp.connection import connect
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INBOUND_EXCHANGE
from shared.envelopes import chunked
from shared.outgoing import OutboundMessage

CHUNK, WINDOW = 32, 8


async def load(argv: list[str]) -> dict[str, object]:
    from bench.lanes import LOADER, load_meldingen

    partner_url, sink_url, mailbox, user_id, tag, count, routing_key = argv
    now = datetime.now(UTC).isoformat(timespec="seconds")
    meldingen = load_meldingen(int(count), tag, now)
    sink = Sink()
    await sink.start(sink_url, [mailbox])
    connection = await connect(partner_url, f"bench-partner-{LOADER}")
    publisher = Publisher(connection)
    await publisher.start()
    chunks = iter(chunked(meldingen, CHUNK))

    async def worker() -> None:
        for part in chunks:
            await publisher.publish(
                *(
                    OutboundMessage(
                        INBOUND_EXCHANGE,
                        routing_key,
                        m.body,
                        message_type=None,
                        message_id=m.message_id,
                        user_id=user_id,
                    )
                    for m in part
                )
            )

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(WINDOW)))
    published = time.monotonic()
    # The benchmark process watches the services and gives up on a stall.
    await wait_until(
        lambda: sink.receipts >= len(meldingen), lambda: sink.receipts, stall_seconds=3600
    )
    await connection.close()
    await sink.close()
    return {
        "started": started,
        "published": published,
        "last_receipt": max(sink.receipt_times),
        "receipts": sink.receipts,
        "statuses": dict(sink.statuses),
    }


def main() -> None:
    print(json.dumps(asyncio.run(load(sys.argv[1:]))), flush=True)


if __name__ == "__main__":
    main()
