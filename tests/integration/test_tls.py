"""Partner links over AMQPS with client certificates, against a RabbitMQ node of the
tests' own (testing/tls_broker.py): TLS only, peer verification, certificate logins
(EXTERNAL, common name = broker user). The services run over TLS too."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import pytest

from cli.demo_pki import DemoCA
from shared.amqp.connection import broker_tls, connect
from shared.amqp.management import Management, partner_permissions
from shared.amqp.tls import client_context
from shared.partner_client import PartnerClient
from shared.provisioning import create_database, drop_database, with_database
from shared.region.model import parse_region
from shared.settings import Settings
from testing.tls_broker import TlsBrokerNode
from tests.conftest import BASE, System
from tests.integration.test_partner_example import run_example
from tests.support import (
    RegionUnderTest,
    eventually,
    region_document,
    register_body,
    run_cli,
    valid_bsn,
)

pytestmark = pytest.mark.tls

SERVICES_USER = "vi-tls-services"
USER_PREFIX = "tls"  # partner broker users: tls-school, tls-jeugdteam, ...


@dataclass(frozen=True)
class Pki:
    """A demo CA with the broker's certificate (for `localhost` only), the services'
    and every test partner's; and certificates the broker must refuse."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def context(self, stem: str | None) -> ssl.SSLContext:
        """A client context presenting certificate STEM (none when None)."""
        if stem is None:
            return client_context(self.ca)
        return client_context(
            self.ca, self.directory / f"{stem}.pem", self.directory / f"{stem}.key"
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = DemoCA()
    ca.write(directory)
    ca.issue("localhost", server_names=["localhost"]).write(directory, "server")
    ca.issue(SERVICES_USER).write(directory, "services")
    for partner in region_document(USER_PREFIX)["partner"]:
        ca.issue(partner["broker_user"]).write(directory, partner["id"])
    DemoCA("Another CA").issue("tls-school").write(directory, "school-other-ca")
    ca.issue("tls-gone").write(directory, "gone")  # valid, but no broker user has its name
    long_ago = datetime.now(UTC) - timedelta(days=30)
    ca.issue("tls-school", not_before=long_ago, days=7).write(directory, "school-expired")
    return Pki(directory)


@pytest.fixture(scope="module")
def tls_node(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBrokerNode]:
    node = TlsBrokerNode.prepare(tmp_path_factory.mktemp("tls-node"), pki.directory)
    try:
        node.start()
        yield node
    finally:
        node.stop()


def _region_toml(document: dict[str, Any]) -> str:
    """The document as a region file (JSON strings, numbers and arrays are TOML too)."""
    lines = []
    for table, content in document.items():
        for entry in content if isinstance(content, list) else [content]:
            lines.append(f"[[{table}]]" if isinstance(content, list) else f"[{table}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
async def tls_region(
    tls_node: TlsBrokerNode,
    pki: Pki,
    template_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RegionUnderTest]:
    """A region on the TLS node whose partners all log in by certificate, applied
    with `verwijsindex region apply` over TLS."""
    vhost, database = "vi-tls", f"vi_tls_{uuid.uuid4().hex[:10]}"
    api = Management(tls_node.management_url)
    await api.put_vhost(vhost)
    await api.put_user_without_password(SERVICES_USER)
    await api.set_permissions(vhost, SERVICES_USER, configure=".*", write=".*", read=".*")
    # A partner moving from a password to a certificate: apply clears the password.
    await api.put_user("tls-brp", "a-password-from-before")
    await create_database(BASE.database_url, database, template=template_db)
    directory = tmp_path_factory.mktemp("tls-region")
    document = region_document(USER_PREFIX)
    for partner in document["partner"]:
        partner["login"] = "certificate"
    settings = Settings(
        amqp_url=tls_node.amqps_url(SERVICES_USER, vhost),
        amqp_ca_file=pki.ca,
        amqp_cert_file=pki.directory / "services.pem",
        amqp_key_file=pki.directory / "services.key",
        database_url=with_database(BASE.database_url, database),
        management_url=tls_node.management_url,
        mail_dir=directory / "mail",
        pseudonym_key="test-pseudonym-key",
        retry_delays_ms=(100, 300),
        outbox_grace_seconds=2.0,
        config_reload_seconds=0.2,
    )
    region = RegionUnderTest(
        settings, vhost, database, parse_region(document), USER_PREFIX, directory / "mail"
    )
    region_file = directory / "region.toml"
    region_file.write_text(_region_toml(document))
    try:
        applied = await run_cli(region, "region", "apply", str(region_file))
        assert applied.exit_code == 0, applied.output
        yield region
    finally:
        await drop_database(BASE.database_url, database)


async def _partner(
    region: RegionUnderTest, node: TlsBrokerNode, pki: Pki, pid: str
) -> PartnerClient:
    user = region.region.partners_by_id[pid].own_broker_user
    client = PartnerClient(
        node.amqps_url(user, region.vhost), pid, user, ssl_context=pki.context(pid)
    )
    await client.start()
    return client


async def test_region_apply_gives_certificate_partners_users_without_password(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode
) -> None:
    api = Management(tls_node.management_url)
    for partner in tls_region.region.partner:  # tls-brp had a password before
        user = await api.call("GET", f"/users/{partner.broker_user}")
        assert user["password_hash"] == ""
        granted = await api.call("GET", f"/permissions/{tls_region.vhost}/{partner.broker_user}")
        wanted = partner_permissions(partner.id)
        assert {k: granted[k] for k in wanted} == wanted


async def test_services_and_partners_run_the_happy_path_over_tls(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode, pki: Pki
) -> None:
    system = System(tls_region)
    clients: list[PartnerClient] = []
    try:
        for name in ("ingest", "matcher", "notifier"):
            await system.start(name)
        school = await _partner(tls_region, tls_node, pki, "school")
        team = await _partner(tls_region, tls_node, pki, "jeugdteam")
        clients += [school, team]
        bsn = valid_bsn(2001)

        sent = await school.send(register_body("TLS-1", bsn=bsn))
        receipt = await school.receipt_for(sent)
        assert receipt.body["status"] == "accepted"
        sent = await team.send(register_body("TLS-2", bsn=bsn))
        assert (await team.receipt_for(sent)).body["status"] == "accepted"
        for client, ref in ((school, "TLS-1"), (team, "TLS-2")):
            notice = await client.next()
            assert (notice.type, notice.body["melding_ref"]) == ("match.notice", ref)

        api = Management(tls_node.management_url)
        logins: set[tuple[str, bool, str]] = set()

        async def listed() -> bool:
            connections = await api.call("GET", "/connections")
            logins.update((c["user"], c["ssl"], c["auth_mechanism"]) for c in connections)
            return {SERVICES_USER, "tls-school", "tls-jeugdteam"} <= {u for u, _, _ in logins}

        await eventually(listed)
        assert {(SERVICES_USER, True, "EXTERNAL"), ("tls-school", True, "EXTERNAL")} <= logins
        assert all(tls for _, tls, _ in logins)
    finally:
        for client in clients:
            await client.close()
        await system.close()


@pytest.mark.parametrize(
    ("certificate", "alert"),
    [
        ("school-other-ca", "UNKNOWN_CA"),
        ("school-expired", "CERTIFICATE_EXPIRED"),
        (None, "HANDSHAKE_FAILURE"),  # TLS 1.2 has no "certificate required" alert
    ],
    ids=["another-ca", "expired", "no-certificate"],
)
async def test_the_broker_refuses_a_bad_certificate_at_the_handshake(
    tls_region: RegionUnderTest,
    tls_node: TlsBrokerNode,
    pki: Pki,
    certificate: str | None,
    alert: str,
) -> None:
    context = pki.context(certificate)
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        await aio_pika.connect(
            tls_node.amqps_url("tls-school", tls_region.vhost), ssl_context=context, timeout=10
        )
    # Which alert the broker sent: with TLS 1.2 the client hears it in the handshake
    # itself (with 1.3 the broker's verdict may race the connection's close).
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match=alert):
        _, writer = await asyncio.open_connection("localhost", tls_node.tls_port, ssl=context)
        writer.close()


async def test_a_valid_certificate_without_a_broker_user_cannot_log_in(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode, pki: Pki
) -> None:
    """How a revoked partner is shut out: its broker user is deleted."""
    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError, match="EXTERNAL"):
        await aio_pika.connect(
            tls_node.amqps_url("tls-gone", tls_region.vhost),
            ssl_context=pki.context("gone"),
            timeout=10,
        )


async def test_a_partner_cannot_publish_as_another_over_tls(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode, pki: Pki
) -> None:
    school = await _partner(tls_region, tls_node, pki, "school")
    try:
        with pytest.raises(
            aiormq.exceptions.ChannelPreconditionFailed,
            match="user_id property set to 'tls-jeugdteam' but authenticated user was 'tls-school'",
        ):
            await school.send(register_body("TLS-X", bsn=valid_bsn(2002)), user_id="tls-jeugdteam")
    finally:
        await school.close()


async def test_plain_amqp_is_refused_on_the_tls_port(tls_node: TlsBrokerNode) -> None:
    with pytest.raises(aiormq.exceptions.AMQPConnectionError):
        await aio_pika.connect(f"amqp://guest:guest@localhost:{tls_node.tls_port}/", timeout=10)


async def test_the_services_check_the_brokers_certificate_and_host_name(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode, pki: Pki
) -> None:
    settings = tls_region.settings
    # 127.0.0.1 is not a name in the broker's certificate (only localhost is).
    by_address = settings.amqp_url.replace("@localhost:", "@127.0.0.1:")
    with pytest.raises(aiormq.exceptions.AMQPConnectionError, match=re.escape("127.0.0.1")):
        await connect(by_address, "test-tls", ssl_context=broker_tls(settings))
    # A broker certificate from a CA we do not trust.
    other_ca = DemoCA("Untrusted CA").write(pki.directory / "untrusted")
    untrusting = replace(settings, amqp_ca_file=other_ca)
    with pytest.raises(aiormq.exceptions.AMQPConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await connect(settings.amqp_url, "test-tls", ssl_context=broker_tls(untrusting))


async def test_the_example_partner_client_logs_in_by_certificate(
    tls_region: RegionUnderTest, tls_node: TlsBrokerNode, pki: Pki, tmp_path: Path
) -> None:
    """examples/partner_client.py, run on its own, registers over AMQPS with the
    partner's certificate (EXTERNAL) and gets its receipt."""
    system = System(tls_region)
    try:
        for name in ("ingest", "matcher"):
            await system.start(name)
        user = tls_region.region.partners_by_id["jgz"].own_broker_user
        code, out, err = await run_example(
            tmp_path,
            "--url",
            tls_node.amqps_url(user, tls_region.vhost),
            "--ca",
            str(pki.ca),
            "--cert",
            str(pki.directory / "jgz.pem"),
            "--key",
            str(pki.directory / "jgz.key"),
            "--partner",
            "jgz",
            "--ref",
            "TLS-EX-1",
            "--bsn",
            valid_bsn(2077),
            "--wait",
            "0.5",
        )
        assert code == 0, out + err
        assert "receipt: accepted" in out
    finally:
        await system.close()
