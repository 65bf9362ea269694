import asyncio, time
from typing import Any
import asyncpg
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.integration.test_matching import Mailbox
from tests.support import register_body, valid_bsn


async def test_dbg(pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]) -> None:
    school = partners["school"]
    t=time.monotonic()
    mids = await asyncio.gather(*(school.send(register_body(f"S-{i}", bsn=valid_bsn(300+i))) for i in range(20)))
    print("sent", time.monotonic()-t)
    got = []
    try:
        while True:
            got.append(await school.next(5))
            print(len(got), got[-1].type, time.monotonic()-t)
    except TimeoutError:
        pass
    print("meldingen", await db.fetchval("select count(*) from melding"), "inbox", await db.fetchval("select count(*) from inbox"))
    print(len(got))
