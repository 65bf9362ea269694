"""Fixtures: every test gets its own vhost and its own database (cloned from a
template migrated once per session), on the real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.ingest.app import setup as ingest_setup
from services.matcher.app import setup as matcher_setup
from services.notifier.app import setup as notifier_setup
from shared import provisioning
from shared.amqp.management import Management, portal_permissions
from shared.db import migrate
from shared.db.pool import connect as connect_db
from shared.logs import configure_logging
from shared.partner_client import PartnerClient
from shared.region.model import RegionConfig, parse_region
from shared.service import Runtime
from shared.settings import Settings
from testing.sandbox import Sandbox, delete_partner_users, put_partner_users
from tests.support import PARTNER_PASSWORD, RegionUnderTest, region_document

BASE = Settings.from_env()
SETUPS: dict[str, Callable[[Runtime], Awaitable[None]]] = {
    "ingest": ingest_setup,
    "matcher": matcher_setup,
    "notifier": notifier_setup,
}


# The parallel worker (gw0, gw1, ... under pytest-xdist; "main" without), in the names
# of the databases and vhosts a test makes: they stay unique, and an operator looking
# at the shared broker or database sees which run and worker made them.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def management() -> Management:
    return Management(BASE.management_url)


@pytest.fixture(scope="session")
async def user_prefix(management: Management) -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    partners = parse_region(region_document(prefix)).partner
    await put_partner_users(management, partners, PARTNER_PASSWORD)
    yield prefix
    await delete_partner_users(management, partners)


@pytest.fixture(scope="session")
async def template_db() -> AsyncIterator[str]:
    name = f"vi_tmpl_{WORKER}_{uuid.uuid4().hex[:8]}"
    try:
        await provisioning.create_database(BASE.database_url, name)
        await migrate.upgrade(provisioning.with_database(BASE.database_url, name))
        yield name
    finally:
        await provisioning.drop_database(BASE.database_url, name)


async def apply_region(test_region: RegionUnderTest, document: dict[str, Any]) -> RegionConfig:
    config = parse_region(document)
    settings = test_region.settings
    await provisioning.apply_region(
        settings.amqp_url,
        settings.database_url,
        config,
        retry_delays_ms=settings.retry_delays_ms,
        delivery_limit=settings.delivery_limit,
        connection_name="test-setup",
    )
    test_region.region = config
    return config


@pytest.fixture
async def test_region(
    user_prefix: str, template_db: str, tmp_path: Path
) -> AsyncIterator[RegionUnderTest]:
    tag = uuid.uuid4().hex[:10]
    document = region_document(user_prefix)
    config = parse_region(document)
    sandbox = await Sandbox.create(
        amqp_url=BASE.amqp_url,
        management_url=BASE.management_url,
        database_url=BASE.database_url,
        vhost=f"vi-test-{WORKER}-{tag}",
        database=f"vi_test_{WORKER}_{tag}",
        partners=config.partner,
        template=template_db,
    )
    settings = Settings(
        amqp_url=sandbox.amqp_url,
        database_url=sandbox.database_url,
        management_url=BASE.management_url,
        mail_dir=tmp_path / "mail",
        pseudonym_key="test-pseudonym-key",
        retry_delays_ms=(100, 300),
        outbox_grace_seconds=2.0,
        config_reload_seconds=0.2,
        prefetch=32,
        # Fewer connections than a production pool: parallel workers, each running a few
        # services at once, stay well below PostgreSQL's max_connections (100 by default).
        db_pool_size=4,
    )
    region = RegionUnderTest(
        settings, sandbox.vhost, sandbox.database, config, user_prefix, tmp_path / "mail"
    )
    try:
        await apply_region(region, document)
        yield region
    finally:
        await sandbox.remove()


# Partners on channel "portal" in the `portal_region` fixture (contract §9).
PORTAL_SCHOOL = "linde"
PORTAL_PARTNERS = {PORTAL_SCHOOL: "Basisschool De Linde", "eik": "Basisschool De Eik"}


@pytest.fixture
async def portal_region(
    test_region: RegionUnderTest, management: Management
) -> AsyncIterator[RegionUnderTest]:
    """The test region with two schools on channel "portal" and a [portal] login
    (password PARTNER_PASSWORD) that may read their mailboxes and partner.portal."""
    document = region_document(test_region.user_prefix)
    document["partner"] += [
        {"id": pid, "name": name, "sector": "onderwijs", "roles": ["reporter"], "channel": "portal"}
        for pid, name in PORTAL_PARTNERS.items()
    ]
    document["portal"] = {"broker_user": f"{test_region.user_prefix}-portal"}
    config = await apply_region(test_region, document)
    assert config.portal is not None
    user = config.portal.broker_user
    await management.put_user(user, PARTNER_PASSWORD)
    await management.set_permissions(
        test_region.vhost, user, **portal_permissions(config.portal_mailboxes)
    )
    try:
        yield test_region
    finally:
        await management.delete_user(user)


@dataclass
class System:
    """Services running in-process against the test region."""

    region: RegionUnderTest
    runtimes: list[Runtime] = field(default_factory=list)

    async def start(
        self,
        name: str,
        *,
        setup: Callable[[Runtime], Awaitable[None]] | None = None,
        settings: Settings | None = None,
    ) -> Runtime:
        runtime = await Runtime.open(name, settings or self.region.settings)
        await (setup or SETUPS[name])(runtime)
        await runtime.start()
        self.runtimes.append(runtime)
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        self.runtimes.remove(runtime)
        await runtime.close()

    async def close(self) -> None:
        for runtime in reversed(self.runtimes):
            await runtime.close()
        self.runtimes.clear()


@pytest.fixture
async def system(test_region: RegionUnderTest) -> AsyncIterator[System]:
    running = System(test_region)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def pipeline(system: System) -> System:
    """Ingest, matcher and notifier running (one replica each)."""
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    return system


@pytest.fixture
async def partners(test_region: RegionUnderTest) -> AsyncIterator[dict[str, PartnerClient]]:
    clients = {}
    for partner in test_region.region.partner:
        client = PartnerClient(
            test_region.partner_url(partner.id), partner.id, partner.own_broker_user
        )
        await client.start()
        clients[partner.id] = client
    try:
        yield clients
    finally:
        for client in clients.values():
            await client.close()


@pytest.fixture
async def db(test_region: RegionUnderTest) -> AsyncIterator[asyncpg.Connection[Any]]:
    conn = await connect_db(test_region.settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


# Tests that must not run side by side on parallel workers (`pytest -n N --dist
# loadgroup`, as scripts/test.sh runs them) share a group, and one worker runs a group's
# tests one after another: RabbitMQ nodes of their own (a three-node cluster, a TLS
# node) and Chromium each take much of the machine's memory and CPU.
GROUP_BY_MARKER = {"cluster": "broker-nodes", "tls": "broker-nodes", "browser": "browser"}


def xdist_group(item: pytest.Item) -> str | None:
    """The worker group of a test: by its marker, else its module when it uses a
    module-scoped fixture (one worker sets that fixture up once, not every worker)."""
    for marker, group in GROUP_BY_MARKER.items():
        if item.get_closest_marker(marker) is not None:
            return group
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is not None:
        for definitions in fixture_info.name2fixturedefs.values():
            if any(d.scope == "module" for d in definitions):
                return item.path.name
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.path.parent):
            item.add_marker(pytest.mark.integration)
        group = xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


os.environ.setdefault("VI_LOG_LEVEL", "warning")
# Services started in-process log as a started service does (JSON lines on the stderr
# of the moment). Left unconfigured, structlog prints to whatever sys.stdout is at that
# moment, which is the CLI's output while `run_cli` runs in another thread.
configure_logging("tests", os.environ["VI_LOG_LEVEL"])
