"""`verwijsindex partner login ID` against the real management API, in a test vhost:
it creates or rotates a partner's broker user, and that login may do exactly what
a partner may (publish to vi.inbound, read its own mailbox)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import aiormq
import pytest

from shared.amqp.management import Management
from shared.partner_client import PartnerClient
from shared.provisioning import with_login
from tests.conftest import apply_region
from tests.support import RegionUnderTest, region_document, run_cli

PASSWORD_LINE = re.compile(r"^password: (\S+)$", re.MULTILINE)


@pytest.fixture
async def newcomer(test_region: RegionUnderTest, management: Management) -> AsyncIterator[str]:
    """A partner added to the test region whose broker user does not exist yet."""
    user = f"{test_region.user_prefix}-new-{uuid.uuid4().hex[:6]}"
    document = region_document(test_region.user_prefix)
    document["partner"].append(
        {
            "id": "nieuw",
            "broker_user": user,
            "name": "Wijkteam Nieuw",
            "sector": "jeugdhulp",
            "roles": ["reporter"],
        }
    )
    await apply_region(test_region, document)
    try:
        yield user
    finally:
        await management.delete_user(user)


def _url(region: RegionUnderTest, user: str, password: str) -> str:
    return with_login(region.settings.amqp_url, user=user, password=password, vhost=region.vhost)


async def _login(region: RegionUnderTest, partner_id: str) -> tuple[str, str]:
    result = await run_cli(region, "partner", "login", partner_id)
    assert result.exit_code == 0, result.output
    found = PASSWORD_LINE.search(result.output)
    assert found, result.output
    return result.output, found.group(1)


async def test_partner_login_creates_a_login_that_acts_as_the_partner(
    test_region: RegionUnderTest, management: Management, newcomer: str
) -> None:
    assert not await management.user_exists(newcomer)
    output, password = await _login(test_region, "nieuw")
    assert f"created broker login {newcomer!r} (partner nieuw)" in output
    assert len(password) >= 32
    assert await management.user_exists(newcomer)

    client = PartnerClient(_url(test_region, newcomer, password), "nieuw", newcomer)
    await client.start()  # consumes partner.nieuw: its own mailbox may be read
    try:
        await client.send({"type": "melding.register"})  # confirmed: vi.inbound is writable
    finally:
        await client.close()


async def test_partner_login_permits_nothing_beyond_the_partners_own(
    test_region: RegionUnderTest, newcomer: str
) -> None:
    _, password = await _login(test_region, "nieuw")
    connection = await aiormq.connect(_url(test_region, newcomer, password))
    try:
        attempts: list[tuple[str, Callable[[aiormq.abc.AbstractChannel], Awaitable[Any]]]] = [
            ("read another partner's mailbox", lambda ch: ch.basic_get("partner.school")),
            (
                "publish to vi.outbound",
                lambda ch: ch.basic_publish(b"{}", exchange="vi.outbound", routing_key="school"),
            ),
            ("declare a queue", lambda ch: ch.queue_declare("mine", durable=True)),
        ]
        for what, attempt in attempts:
            channel = await connection.channel(publisher_confirms=True)
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                await attempt(channel)
                raise AssertionError(f"allowed to {what}")
        own = await connection.channel()
        await own.basic_get("partner.nieuw")  # its own mailbox: allowed
    finally:
        await connection.close()


async def test_partner_login_again_rotates_the_password(
    test_region: RegionUnderTest, newcomer: str
) -> None:
    _, first = await _login(test_region, "nieuw")
    output, second = await _login(test_region, "nieuw")
    assert second != first
    assert f"new password for broker login {newcomer!r}" in output

    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(_url(test_region, newcomer, first))
    connection = await aio_pika.connect(_url(test_region, newcomer, second))
    await connection.close()


async def test_partner_login_refuses_unknown_and_certificate_partners(
    test_region: RegionUnderTest,
) -> None:
    unknown = await run_cli(test_region, "partner", "login", "nobody")
    assert unknown.exit_code == 1
    assert "no partner 'nobody' in the applied region config" in unknown.output

    document = region_document(test_region.user_prefix)
    document["partner"][0]["login"] = "certificate"
    await apply_region(test_region, document)
    by_certificate = await run_cli(test_region, "partner", "login", "school")
    assert by_certificate.exit_code == 1
    assert "logs in by certificate" in by_certificate.output
