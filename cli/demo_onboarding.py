"""The demo's last step: an onboarding load goes by with live traffic beside it, and
the live meldingen are answered first (contract §10)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import click

from shared.contract.inbound import ONBOARDING_ROUTING_KEY
from shared.contract.validation import example_bsn
from shared.partner_client import PartnerClient

LOAD = 300
LIVE = 5
LIVE_EVERY_SECONDS = 0.05


def _melding(ref: str, bsn: str, reporter: dict[str, str], now: str) -> dict[str, Any]:
    return {
        "type": "melding.register",
        "melding_ref": ref,
        "youth": {"bsn": bsn, "birth_date": "2012-05-20", "municipality": "0363"},
        "reporter": reporter,
        "reported_at": now,
    }


async def onboarding_beside_live(
    loader: PartnerClient, live: PartnerClient, now: str, timeout: float = 60.0
) -> None:
    """`loader` publishes an onboarding load of `LOAD` meldingen; while it goes in,
    `live` registers `LIVE` meldingen. Prints when each side was answered."""
    seed = 30_000_000 + secrets.randbelow(10**7)
    load_reporter = {"name": "Archief", "email": "archief@ggd.example"}
    live_reporter = {"name": "J. de Vries", "email": "j.devries@regenboog.example"}
    load = [
        _melding(f"ONB-{seed}-{k}", example_bsn(seed + k), load_reporter, now) for k in range(LOAD)
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    load_ids = set(
        await asyncio.gather(*(loader.send(b, routing_key=ONBOARDING_ROUTING_KEY) for b in load))
    )
    click.echo(f"  (the load of {LOAD} published in {loop.time() - started:.2f} s)")
    load_answered = 0
    load_done_at: float | None = None

    async def count_load() -> None:
        nonlocal load_answered, load_done_at
        while load_answered < LOAD:
            got = await loader.next(timeout)
            if got.type == "receipt" and got.body.get("in_reply_to") in load_ids:
                load_answered += 1
        load_done_at = loop.time()

    counting = asyncio.create_task(count_load())
    try:
        waits: list[float] = []
        load_at_last_live = 0
        for k in range(LIVE):
            body = _melding(f"RB-LIVE-{seed}-{k}", example_bsn(seed + LOAD + k), live_reporter, now)
            sent = loop.time()
            message_id = await live.send(body)
            await live.receipt_for(message_id, timeout)
            waits.append(loop.time() - sent)
            load_at_last_live = load_answered
            await asyncio.sleep(LIVE_EVERY_SECONDS)
        await counting
    finally:
        counting.cancel()
    assert load_done_at is not None
    click.echo(
        f"  <- regenboog: {LIVE} live receipts, each within {max(waits) * 1000:.0f} ms"
        f" of its publish"
    )
    click.echo(
        f"  <- ggd-jgz: {LOAD} onboarding receipts, the last {load_done_at - started:.1f} s"
        " after the load began"
    )
    if load_at_last_live < LOAD:
        click.echo(
            f"  The live meldingen were answered first: at the last live receipt"
            f" {LOAD - load_at_last_live} of the {LOAD} onboarding meldingen were still waiting."
        )
    else:
        click.echo("  The load was through before the last live melding was sent (a fast machine).")
