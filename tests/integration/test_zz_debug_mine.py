from __future__ import annotations
import asyncio, time
from typing import Any
import asyncpg
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.integration.test_matching import Mailbox
from tests.support import register_body, valid_bsn


async def test_dbg(pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]) -> None:
    school = Mailbox(partners["school"])
    t=time.monotonic()
    async def one(i):
        r = await school.register(f"S-{i}", bsn=valid_bsn(300+i))
        print(i, r["status"], time.monotonic()-t)
    await asyncio.gather(*(one(i) for i in range(20)))
    print("kept", len(school.kept))
