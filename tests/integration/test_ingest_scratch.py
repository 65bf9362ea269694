from __future__ import annotations
import asyncio, json, struct
import aio_pika, pytest
from pamqp import encode, common
from shared.partner_client import PartnerClient
from tests.conftest import System
from tests.support import register_body, valid_bsn, RegionUnderTest

def _short(value):
    raw = value if isinstance(value, bytes) else value.encode()
    return struct.pack(">B", len(raw)) + raw

@pytest.mark.parametrize("case", ["tag", "ts", "key"])
async def test_probe(case: str, test_region: RegionUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = await aio_pika.connect(test_region.settings.amqp_url)
    ch = await conn.channel(publisher_confirms=True)
    q = await ch.declare_queue("probe", durable=True, arguments={"x-queue-type": "quorum"})
    msg = aio_pika.Message(b'{}')
    if case == "tag":
        real = encode.field_table
        monkeypatch.setitem(encode.METHODS, "table", lambda v: struct.pack(">I", 4) + b"\x01aZ\x00" if v else real(v))
        msg.headers = {"a": 1}
    elif case == "ts":
        monkeypatch.setitem(encode.METHODS, "timestamp", lambda v: struct.pack(">Q", 2**63))
        msg.timestamp = 5  # type: ignore
    else:
        monkeypatch.setitem(encode.METHODS, "table", lambda v: struct.pack(">I", 4) + b"\x02\xff\xfeV" if v else encode.field_table(v))
        msg.headers = {"a": 1}
    await ch.default_exchange.publish(msg, routing_key="probe")
    print("published", case)
    monkeypatch.undo()
    conn2 = await aio_pika.connect(test_region.settings.amqp_url)
    ch2 = await conn2.channel()
    q2 = await ch2.get_queue("probe")
    try:
        got = await q2.get(fail=False)
        print("got", got and (got.headers, got.timestamp))
    except Exception as e:
        print("ERR", repr(e))
    await asyncio.sleep(0.5)
    print("conn2 closed?", conn2.is_closed)
