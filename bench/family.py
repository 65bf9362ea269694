"""The family match under load: the region's `family_match` on, and a population
register that answers every youth's `person.lookup` at once with a `person.family`
(a parent of its own per youth: the lookup, the answer and the search for relatives
are all paid, without adding family notices to the count).

`end_to_end(ctx, n, family=True)` (bench/pipeline.py) runs the same load as the plain
end-to-end part with this register beside it; the summary puts the two rates side by
side.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiormq
from aio_pika.abc import AbstractRobustConnection
from aiormq.abc import DeliveredMessage

from bench.env import BenchEnv
from shared.amqp.connection import connect
from shared.amqp.publisher import Publisher
from shared.amqp.topology import INBOUND_EXCHANGE, partner_queue
from shared.contract.validation import example_bsn
from shared.outgoing import OutboundMessage
from shared.region.model import FamilyRelation, RegionConfig

REGISTER_ID = "brp"
PARENT_SEED_BASE = 30_000_000  # parents' BSNs: apart from the youths' (bench.traffic)


def family_region(region: RegionConfig) -> RegionConfig:
    """The benchmark region with the family match on a shared parent."""
    rules = region.region.model_copy(update={"family_match": [FamilyRelation.PARENT]})
    return region.model_copy(update={"region": rules})


class RegisterAnswering:
    """The register: reads its mailbox, answers each lookup (once per message_id),
    counts the receipts of its answers."""

    def __init__(self, env: BenchEnv) -> None:
        self._env = env
        self._user = env.region.partners_by_id[REGISTER_ID].broker_user
        self._connection: AbstractRobustConnection | None = None
        self._reader: aiormq.abc.AbstractConnection | None = None
        self._publisher: Publisher | None = None
        self._seen: set[str] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self._parents: dict[str, str] = {}
        self.lookups = 0
        self.duplicates = 0
        self.facts_receipted = 0
        self.rejected = 0
        self.last_at = 0.0

    async def start(self) -> None:
        url = self._env.partner_url(REGISTER_ID)
        self._connection = await connect(url, "bench-register")
        self._publisher = Publisher(self._connection)
        await self._publisher.start()
        self._reader = await aiormq.connect(
            url, client_properties={"connection_name": "bench-register-read"}
        )
        channel = await self._reader.channel()
        await channel.basic_qos(prefetch_count=2000)
        await channel.basic_consume(partner_queue(REGISTER_ID), self._on_message, no_ack=True)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._reader is not None:
            await self._reader.close()
        if self._connection is not None:
            await self._connection.close()

    def _parent_of(self, bsn: str) -> str:
        if bsn not in self._parents:
            self._parents[bsn] = example_bsn(PARENT_SEED_BASE + len(self._parents))
        return self._parents[bsn]

    async def _on_message(self, delivered: DeliveredMessage) -> None:
        properties = delivered.header.properties
        key = properties.message_id or ""
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        body = json.loads(delivered.body)
        if properties.message_type == "receipt":
            self.last_at = time.monotonic()
            if body.get("status") == "accepted":
                self.facts_receipted += 1
            else:
                self.rejected += 1
            return
        if properties.message_type != "person.lookup":
            return
        self.lookups += 1
        task = asyncio.create_task(self._answer(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer(self, lookup: dict[str, Any]) -> None:
        assert self._publisher is not None
        bsn = str(lookup["bsn"])
        answer = {
            "type": "person.family",
            "lookup_id": lookup["lookup_id"],
            "bsn": bsn,
            "parents": [self._parent_of(bsn)],
            "address": None,
        }
        outgoing = OutboundMessage(
            INBOUND_EXCHANGE,
            "person.family",
            json.dumps(answer).encode(),
            message_type=None,
            message_id=str(uuid.uuid4()),
            user_id=self._user,
        )
        await self._publisher.publish(outgoing)

    def figures(self, youths: int) -> dict[str, Any]:
        return {
            "youths": youths,
            "lookups": self.lookups,
            "lookup_copies_dropped": self.duplicates,
            "facts_receipted": self.facts_receipted,
            "facts_rejected": self.rejected,
        }
