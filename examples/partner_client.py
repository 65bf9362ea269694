"""Register one melding the way a partner system does, and show what comes back.

    python examples/partner_client.py --url amqp://regenboog:regenboog@localhost:5672/ \\
        --partner regenboog --user regenboog

It logs in with the partner's own broker login, publishes a ``melding.register`` on
``vi.inbound`` (routing key = type, ``user_id`` = the login, persistent, with
publisher confirms), then reads the partner's mailbox ``partner.<id>``: it prints the
receipt whose ``in_reply_to`` is our ``message_id``, and every notice that arrives
until the mailbox has been quiet for ``--wait`` seconds. Messages with a
``message_id`` already seen are dropped, as a partner must. Exit status: 0 accepted,
1 rejected or duplicate, 2 no receipt in time.

The BSN defaults to a made-up one that passes the 11-proef; it is never printed.
See docs/partners.md for the whole contract.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.contract.validation import example_bsn
from shared.partner_client import PartnerClient, Received


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Register one melding and print the answers.")
    parser.add_argument("--url", required=True, help="AMQP URL with the partner's own login")
    parser.add_argument("--partner", required=True, help="partner id (mailbox partner.<id>)")
    parser.add_argument("--user", required=True, help="broker login, sent as AMQP user_id")
    parser.add_argument("--ref", default=None, help="melding_ref (default: a new one)")
    parser.add_argument("--bsn", default=example_bsn(1), help="the youth's BSN")
    parser.add_argument("--birth-date", default="2014-05-01", help="YYYY-MM-DD")
    parser.add_argument("--municipality", default="0363", help="4-digit municipality code")
    parser.add_argument("--reporter-name", default="J. de Vries")
    parser.add_argument("--reporter-email", default="j.devries@school.example")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to await the receipt")
    parser.add_argument(
        "--wait", type=float, default=3.0, help="seconds of quiet before we stop reading notices"
    )
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


def show(label: str, message: Received) -> None:
    print(f"{label}: {message.body.get('status') or message.type}")
    print(json.dumps(message.body, indent=2, ensure_ascii=False))


async def run(args: argparse.Namespace) -> int:
    client = PartnerClient(args.url, args.partner, args.user)
    await client.start()
    seen: set[str | None] = set()

    def is_new(message: Received) -> bool:
        if message.message_id in seen:
            return False  # a redelivered copy: same message_id, already handled
        seen.add(message.message_id)
        return True

    try:
        ref = args.ref or f"EX-{uuid.uuid4().hex[:8]}"
        message_id = await client.send(registration(args, ref))
        print(f"sent melding.register {ref} as message_id {message_id}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        receipt: Received | None = None
        while receipt is None:
            try:
                message = await client.next(max(deadline - loop.time(), 0.001))
            except TimeoutError:
                print(f"no receipt within {args.timeout:g} s", file=sys.stderr)
                return 2
            if not is_new(message):
                continue
            if message.type == "receipt" and message.body.get("in_reply_to") == message_id:
                receipt = message
                show("receipt", message)
            else:
                show("earlier message", message)  # e.g. left in the mailbox by a former run
        for message in await client.quiet(args.wait):
            if is_new(message):
                show("notice", message)
        return 0 if receipt.body["status"] == "accepted" else 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
