"""The portal channel in the region config (contract §9): `region apply` declares the
portal's own mailbox, and the portal's broker login reads exactly the mailboxes it
serves."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import quote

import aio_pika
import aiormq
import pytest

from shared.amqp.management import Management
from shared.amqp.topology import OUTBOUND_EXCHANGE
from shared.provisioning import with_login
from tests.support import RegionUnderTest, run_cli

REGION_FILE = """
[region]
name = "Regio Proef"

[[municipality]]
code = "0363"
name = "Amsterdam"
coordinator_email = "regie@amsterdam.example"

[[partner]]
id = "school"
broker_user = "{prefix}-school"
name = "Basisschool De Regenboog"
sector = "onderwijs"
roles = ["reporter"]

[[partner]]
id = "linde"
name = "Basisschool De Linde"
sector = "onderwijs"
roles = ["reporter"]
channel = "portal"
{portal}"""


def _region_file(tmp_path: Path, prefix: str, portal_user: str | None) -> Path:
    portal = "" if portal_user is None else f'\n[portal]\nbroker_user = "{portal_user}"\n'
    path = tmp_path / "region.toml"
    path.write_text(REGION_FILE.format(prefix=prefix, portal=portal), encoding="utf-8")
    return path


async def _routed(region: RegionUnderTest, routing_key: str, queue: str) -> bool:
    """Whether a message published to vi.outbound with `routing_key` lands in `queue`."""
    connection = await aio_pika.connect(region.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(OUTBOUND_EXCHANGE)
        marker = uuid.uuid4().hex
        await exchange.publish(aio_pika.Message(b"{}", message_id=marker), routing_key=routing_key)
        source = await channel.get_queue(queue)
        for _ in range(50):
            got = await source.get(fail=False, no_ack=True)
            if got is not None:
                return got.message_id == marker
            await asyncio.sleep(0.05)
        return False


async def test_apply_without_portal_section_is_refused_and_changes_nothing(
    test_region: RegionUnderTest, tmp_path: Path
) -> None:
    path = _region_file(tmp_path, test_region.user_prefix, None)
    refused = await run_cli(test_region, "region", "apply", str(path))
    assert refused.exit_code == 1
    assert 'partners with channel = "portal" (linde) need a [portal] section' in refused.output
    shown = await run_cli(test_region, "region", "show")
    assert shown.output.startswith("revision 1,")  # a bad file changes nothing


async def test_apply_declares_the_portal_mailbox_and_the_portal_login_reads_what_it_serves(
    test_region: RegionUnderTest, management: Management, tmp_path: Path
) -> None:
    portal_user = f"p{uuid.uuid4().hex[:8]}-portal"
    path = _region_file(tmp_path, test_region.user_prefix, portal_user)
    applied = await run_cli(test_region, "region", "apply", str(path))
    assert applied.exit_code == 0, applied.output
    assert await _routed(test_region, "portal", "partner.portal")
    assert await _routed(test_region, "linde", "partner.linde")
    shown = await run_cli(test_region, "region", "show")
    assert "[portal]\n  broker_user  " + portal_user in shown.output

    refused = await run_cli(test_region, "partner", "login", "linde")
    assert refused.exit_code == 1
    assert "uses the web portal" in refused.output
    assert "verwijsindex partner login portal" in refused.output

    try:
        made = await run_cli(test_region, "partner", "login", "portal")
        assert made.exit_code == 0, made.output
        assert f"created broker login {portal_user!r} (partner portal)" in made.output
        password = made.output.split("password: ")[1].split()[0]
        url = with_login(
            test_region.settings.amqp_url,
            user=portal_user,
            password=password,
            vhost=test_region.vhost,
        )
        connection = await aio_pika.connect(url)
        async with connection:
            for queue in ("partner.portal", "partner.linde"):
                channel = await connection.channel()
                await (await channel.get_queue(queue)).get(fail=False)  # may read
                await channel.close()
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await (await channel.get_queue("partner.school")).get(fail=False)
    finally:
        await management.delete_user(portal_user)


async def test_a_certificate_portal_login_is_made_by_apply_without_a_password(
    test_region: RegionUnderTest, management: Management, tmp_path: Path
) -> None:
    portal_user = f"p{uuid.uuid4().hex[:8]}-portal"
    path = _region_file(tmp_path, test_region.user_prefix, portal_user)
    path.write_text(path.read_text() + 'login = "certificate"\n', encoding="utf-8")
    try:
        applied = await run_cli(test_region, "region", "apply", str(path))
        assert applied.exit_code == 0, applied.output
        user = await management.call("GET", f"/users/{portal_user}")
        assert not user.get("password_hash")
        granted = await management.call(
            "GET", f"/permissions/{quote(test_region.vhost, safe='')}/{portal_user}"
        )
        assert granted["read"] == r"^partner\.(linde|portal)$"
        refused = await run_cli(test_region, "partner", "login", "portal")
        assert refused.exit_code == 1 and "logs in by certificate" in refused.output
    finally:
        await management.delete_user(portal_user)
