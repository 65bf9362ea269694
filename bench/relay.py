"""The baseline: a bare aio-pika relay moving the same messages through the same
queues as the pipeline, with nothing but the broker work.

Run as `python -m bench.relay STAGE` (the benchmark starts as many replicas of each
stage as it starts of the matching service). Each stage consumes with manual acks and
the services' prefetch, publishes persistent messages with publisher confirms and
`mandatory`, and acks once the broker confirmed. The hops are the pipeline's:

* ingest:   vi.ingest   -> vi.matcher                     (the command)
* matcher:  vi.matcher  -> partner.<id>                   (the receipt)
                        -> vi.notifier                    (per match: the event)
* notifier: vi.notifier -> partner.<id> x N, vi.email x M (notices and e-mail jobs)

The benchmark itself publishes into vi.inbound as the partners and consumes the
partner mailboxes and vi.email, as it does for the pipeline. Bodies have the sizes of
the pipeline's messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from shared.amqp.nodes import first_node
from shared.amqp.topology import (
    EMAIL_KEY,
    INGEST_QUEUE,
    INTERNAL_EXCHANGE,
    MATCHER_KEY,
    MATCHER_QUEUE,
    NOTIFIER_KEY,
    NOTIFIER_QUEUE,
    OUTBOUND_EXCHANGE,
)

# Body sizes of the pipeline's messages (bytes), measured on the benchmark's meldingen.
SIZES = {"command": 404, "receipt": 123, "notify": 2881, "notice": 392, "email": 613}
STAGES = ("ingest", "matcher", "notifier")


def completes_match(message_id: str) -> bool:
    """The benchmark marks a youth's second melding in its message_id (see traffic)."""
    return message_id.endswith("-2")


def fanout() -> tuple[int, int, int]:
    """(events per match, notices per event, e-mails per event), from BENCH_FANOUT."""
    events, notices, emails = (int(x) for x in os.environ.get("BENCH_FANOUT", "1,2,3").split(","))
    return events, notices, emails


class Stage:
    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.prefix = os.environ.get("BENCH_LOGIN_PREFIX", "") + "-"
        self.events, self.notices, self.emails = fanout()
        self._internal: AbstractExchange | None = None
        self._outbound: AbstractExchange | None = None

    def _message(
        self, kind: str, *, message_id: str, correlation_id: str, partner: str
    ) -> aio_pika.Message:
        return aio_pika.Message(
            b"x" * SIZES[kind],
            message_id=message_id,
            correlation_id=correlation_id,
            type={"notice": "match.notice"}.get(kind, kind),
            headers={"x-bench-partner": partner},
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )

    async def _publish(
        self, exchange: AbstractExchange | None, key: str, msg: aio_pika.Message
    ) -> None:
        assert exchange is not None
        await exchange.publish(msg, key, mandatory=True, timeout=30)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        mid = message.message_id or str(uuid.uuid4())
        if self.stage == "ingest":
            partner = (message.user_id or "").removeprefix(self.prefix)
            await self._publish(
                self._internal,
                MATCHER_KEY,
                self._message("command", message_id=mid, correlation_id=mid, partner=partner),
            )
        elif self.stage == "matcher":
            partner = str((message.headers or {}).get("x-bench-partner", ""))
            jobs = [
                self._publish(
                    self._outbound,
                    partner,
                    self._message("receipt", message_id=mid, correlation_id=mid, partner=partner),
                )
            ]
            if completes_match(mid):
                jobs += [
                    self._publish(
                        self._internal,
                        NOTIFIER_KEY,
                        self._message(
                            "notify", message_id=f"{mid}/{n}", correlation_id=mid, partner=partner
                        ),
                    )
                    for n in range(self.events)
                ]
            await asyncio.gather(*jobs)
        else:
            partner = str((message.headers or {}).get("x-bench-partner", ""))
            # Notices name the melding the event is about (the benchmark's latency).
            about = message.correlation_id or mid
            await asyncio.gather(
                *(
                    self._publish(
                        self._outbound,
                        partner,
                        self._message(
                            "notice",
                            message_id=f"{mid}/n{n}",
                            correlation_id=about,
                            partner=partner,
                        ),
                    )
                    for n in range(self.notices)
                ),
                *(
                    self._publish(
                        self._internal,
                        EMAIL_KEY,
                        self._message(
                            "email", message_id=f"{mid}/e{n}", correlation_id=mid, partner=partner
                        ),
                    )
                    for n in range(self.emails)
                ),
            )
        await message.ack()

    async def run(self) -> None:
        url = os.environ["VI_AMQP_URL"]
        prefetch = int(os.environ.get("VI_PREFETCH", "64"))
        connection = await aio_pika.connect_robust(
            first_node(url), client_properties={"connection_name": f"bench-relay-{self.stage}"}
        )
        publish_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._internal = await publish_channel.get_exchange(INTERNAL_EXCHANGE, ensure=False)
        self._outbound = await publish_channel.get_exchange(OUTBOUND_EXCHANGE, ensure=False)
        consume_channel = await connection.channel()
        await consume_channel.set_qos(prefetch_count=prefetch)
        queue_name = {"ingest": INGEST_QUEUE, "matcher": MATCHER_QUEUE}.get(
            self.stage, NOTIFIER_QUEUE
        )
        queue = await consume_channel.get_queue(queue_name, ensure=False)
        await queue.consume(self.handle)
        print(f"relay {self.stage} consuming {queue_name}", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await connection.close()


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        raise SystemExit(f"usage: python -m bench.relay {{{'|'.join(STAGES)}}}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(Stage(sys.argv[1]).run())


if __name__ == "__main__":
    main()
