"""Register one melding the way a partner system does, and print what comes back.

Standalone: it needs Python 3.11+ and aio-pika (``pip install aio-pika``), nothing of
the index's own code.

    python partner_client.py --url amqp://LOGIN:PASSWORD@localhost:5672/ --partner regenboog

or, logging in by client certificate over TLS (the login is the certificate's CN):

    python partner_client.py --url "amqps://regenboog@mq.example:5671/?auth=external" \
        --ca broker-ca.pem --cert regenboog.pem --key regenboog.key --partner regenboog

What every partner system must do, and this one shows:

* log in with the partner's own broker login, and set ``user_id`` to that login;
* publish persistent messages to ``vi.inbound`` (routing key = ``type``) with
  publisher confirms;
* choose the ``message_id`` once, before the first attempt, and publish again with the
  same id when the broker does not confirm (a retry must be the same message);
* read the mailbox ``partner.<id>`` with manual acks, and drop a ``message_id`` seen
  before (the index delivers at least once);
* find the receipt by ``correlation_id``, which is the ``message_id`` we sent.

Exit status: 0 accepted, 1 rejected or duplicate, 2 no receipt in time.
See docs/partners.md for the whole contract.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

INBOUND_EXCHANGE = "vi.inbound"
PUBLISH_ATTEMPTS = 5
CONFIRM_TIMEOUT = 10.0  # seconds to await the broker's confirm of one publish
RETRY_PAUSE = 1.0  # seconds before the first retry; one more before each next one


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Register one melding and print the answers.")
    parser.add_argument("--url", required=True, help="AMQP URL with the partner's own login")
    parser.add_argument("--partner", required=True, help="partner id (mailbox partner.<id>)")
    parser.add_argument("--user", help="broker login sent as user_id (default: the URL's)")
    parser.add_argument("--ca", help="amqps: CA file that signed the broker's certificate")
    parser.add_argument("--cert", help="amqps: the partner's client certificate (PEM)")
    parser.add_argument("--key", help="amqps: the key of that certificate (PEM)")
    parser.add_argument("--ref", help="melding_ref (default: a new one)")
    parser.add_argument("--bsn", default="111222333", help="the youth's BSN (a made-up one)")
    parser.add_argument("--birth-date", default="2014-05-01", help="YYYY-MM-DD")
    parser.add_argument("--municipality", default="0363", help="4-digit municipality code")
    parser.add_argument("--reporter-name", default="J. de Vries")
    parser.add_argument("--reporter-email", default="j.devries@school.example")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to await the receipt")
    parser.add_argument("--wait", type=float, default=3.0, help="seconds of quiet, then stop")
    return parser.parse_args(argv)


def registration(args: argparse.Namespace, ref: str) -> dict[str, Any]:
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": {
            "bsn": args.bsn,
            "birth_date": args.birth_date,
            "municipality": args.municipality,
        },
        "reporter": {"name": args.reporter_name, "email": args.reporter_email},
        "reported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


async def publish(
    channel: AbstractChannel, body: dict[str, Any], message_id: str, user: str
) -> None:
    """Publish until the broker confirms. Every attempt carries the same message_id, so
    the index acts once however often the message arrives. (Set it yourself: aio-pika
    fills in a fresh random id on each publish without one, which would make a retry
    a second melding.)"""
    message = aio_pika.Message(
        json.dumps(body).encode(),
        message_id=message_id,
        user_id=user,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            exchange = await channel.get_exchange(INBOUND_EXCHANGE, ensure=False)
            await exchange.publish(message, routing_key=body["type"], timeout=CONFIRM_TIMEOUT)
            return
        except (aio_pika.exceptions.AMQPError, ConnectionError, TimeoutError) as exc:
            if attempt == PUBLISH_ATTEMPTS:
                raise
            print(f"not confirmed ({exc!r}); again with the same message_id", file=sys.stderr)
            await asyncio.sleep(attempt * RETRY_PAUSE)  # the connection reconnects meanwhile


def show(label: str, body: dict[str, Any]) -> None:
    print(f"{label}: {body.get('status') or body.get('type')}")
    print(json.dumps(body, indent=2, ensure_ascii=False))


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """For amqps://: check the broker's certificate and host name, TLS 1.2 or newer, and
    present the partner's certificate when one is given (log in with ?auth=external)."""
    if urlsplit(args.url).scheme != "amqps":
        return None
    context = ssl.create_default_context(cafile=args.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    return context


async def run(args: argparse.Namespace) -> int:
    user = args.user or unquote(urlsplit(args.url).username or "")
    connection = await aio_pika.connect_robust(args.url, ssl_context=tls_context(args))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # A passive declare (ensure=True): a partner may declare nothing, and only a
        # queue the robust channel looked up itself is consumed again after a reconnect.
        mailbox = await channel.get_queue(f"partner.{args.partner}", ensure=True)
        arrived: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await mailbox.consume(arrived.put)
        seen: set[str | None] = set()

        async def next_new(timeout: float) -> AbstractIncomingMessage | None:
            """The next message not seen before (acknowledged), or None after `timeout`."""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                try:
                    message = await asyncio.wait_for(arrived.get(), deadline - loop.time())
                except TimeoutError:
                    return None
                # A real system stores the message first and acknowledges after that.
                await message.ack()
                if message.message_id not in seen:  # else a redelivered copy: drop it
                    seen.add(message.message_id)
                    return message

        ref = args.ref or f"EX-{uuid.uuid4().hex[:8]}"
        message_id = str(uuid.uuid4())  # the idempotency key, chosen before the first try
        await publish(channel, registration(args, ref), message_id, user)
        print(f"sent melding.register {ref} as message_id {message_id}")

        while True:
            message = await next_new(args.timeout)
            if message is None:
                print(f"no receipt within {args.timeout:g} s", file=sys.stderr)
                return 2
            body = json.loads(message.body)
            if message.correlation_id == message_id:
                show("receipt", body)
                break
            show("earlier message", body)  # e.g. left in the mailbox by a former run
        while (notice := await next_new(args.wait)) is not None:
            show("notice", json.loads(notice.body))
        return 0 if body["status"] == "accepted" else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
