"""A bad setting or a backend that is away: every command answers in one or two lines
that name what to fix, never with a traceback; `--debug` shows the traceback."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared.db import migrate
from shared.provisioning import drop_database, with_database, with_login
from tests.support import RegionUnderTest, cli_env, run_cli

VERWIJSINDEX = str(Path(sys.executable).parent / "verwijsindex")
FREE_PORT = 9  # discard: nothing listens there


def _with(url: str, **parts: str) -> str:
    return urlunsplit(urlsplit(url)._replace(**parts))


def _settings(region: RegionUnderTest, case: str) -> dict[str, str]:
    s = region.settings
    return {
        "missing database": {"VI_DATABASE_URL": _with(s.database_url, path="/vi_no_such_db")},
        "unparsable database URL": {"VI_DATABASE_URL": "postgresql://postgres@127.0.0.1:five/x"},
        "database down": {
            "VI_DATABASE_URL": _with(s.database_url, netloc=f"127.0.0.1:{FREE_PORT}")
        },
        "database login refused": {
            "VI_DATABASE_URL": _with(s.database_url, netloc="vi_no_such_role@127.0.0.1")
        },
        "wrong broker password": {
            "VI_AMQP_URL": with_login(
                s.amqp_url, user="guest", password="wrong", vhost=region.vhost
            )
        },
        "broker down": {
            "VI_AMQP_URL": _with(s.amqp_url, netloc=f"guest:guest@127.0.0.1:{FREE_PORT}")
        },
        "unparsable broker URL": {"VI_AMQP_URL": "amqp://guest:guest@127.0.0.1:five/"},
        "unknown virtual host": {"VI_AMQP_URL": _with(s.amqp_url, path="/vi-no-such-vhost")},
        "management API down": {"VI_MANAGEMENT_URL": f"http://guest:guest@127.0.0.1:{FREE_PORT}"},
        "management login refused": {
            "VI_MANAGEMENT_URL": _with(s.management_url, netloc="guest:wrong@127.0.0.1:15672")
        },
    }[case]


# (bad setting, a command that needs it, what the answer must say, what it must not)
CASES = [
    ("missing database", "stats", ['"vi_no_such_db" does not exist', "db upgrade --create"], []),
    ("missing database", "db upgrade", ["does not exist", "--create"], []),
    ("unparsable database URL", "stats", ["VI_DATABASE_URL is not a valid", "postgresql://"], []),
    ("database down", "stats", ["cannot reach PostgreSQL", "VI_DATABASE_URL"], ["RabbitMQ"]),
    ("database login refused", "stats", ["PostgreSQL refused the login", "VI_DATABASE_URL"], []),
    (
        "wrong broker password",
        "retention run",  # opens the database first, then the broker
        ["RabbitMQ refused the login", "VI_AMQP_URL"],
        ["PostgreSQL", "VI_DATABASE_URL"],
    ),
    ("broker down", "parked list", ["cannot reach RabbitMQ", "VI_AMQP_URL"], ["PostgreSQL"]),
    (
        "unparsable broker URL",
        "parked list",
        ["VI_AMQP_URL is not a valid", "amqp://"],
        [":guest@"],
    ),
    ("unknown virtual host", "parked list", ["virtual host", "VI_AMQP_URL"], ["PostgreSQL"]),
    (
        "management API down",
        "status",
        ["cannot reach the RabbitMQ management API", "VI_MANAGEMENT_URL"],
        [],
    ),
    (
        "management login refused",
        "status",
        ["refused the login (HTTP 401)", "VI_MANAGEMENT_URL"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("case", "command", "says", "not_says"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES]
)
async def test_a_bad_setting_is_answered_in_one_or_two_lines(
    test_region: RegionUnderTest, case: str, command: str, says: list[str], not_says: list[str]
) -> None:
    env = _settings(test_region, case)
    result = await run_cli(test_region, *command.split(), env=env)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.output
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    for text in says:
        assert text in result.output, result.output
    for text in not_says:
        assert text not in result.output, result.output


async def _verwijsindex(
    region: RegionUnderTest, *args: str, env: dict[str, str]
) -> tuple[int, str]:
    """The installed command in its own process; returns (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        VERWIJSINDEX,
        *args,
        env={**cli_env(region), **env, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


async def test_the_installed_command_shows_the_traceback_only_with_debug(
    test_region: RegionUnderTest,
) -> None:
    env = _settings(test_region, "missing database")
    code, stderr = await _verwijsindex(test_region, "stats", env=env)
    assert code == 1
    assert stderr.strip().splitlines()[0].startswith('Error: database "vi_no_such_db"')
    assert "Traceback" not in stderr

    code, stderr = await _verwijsindex(test_region, "--debug", "stats", env=env)
    assert code == 1
    assert "Traceback (most recent call last)" in stderr
    assert "InvalidCatalogNameError" in stderr


async def test_an_unexpected_error_points_to_debug(test_region: RegionUnderTest) -> None:
    result = await run_cli(test_region, "stats", env={"VI_DB_POOL_SIZE": "many"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in result.output
    assert lines[0] == "Error: ValueError: invalid literal for int() with base 10: 'many'"
    assert "--debug" in lines[1]


async def test_db_upgrade_creates_a_database_only_when_asked(
    test_region: RegionUnderTest, db: asyncpg.Connection[Any]
) -> None:
    name = f"vi_fresh_{uuid.uuid4().hex[:8]}"
    env = {"VI_DATABASE_URL": with_database(test_region.settings.database_url, name)}
    exists = "SELECT count(*) FROM pg_database WHERE datname = $1"
    try:
        refused = await run_cli(test_region, "db", "upgrade", env=env)
        assert refused.exit_code == 1 and "--create" in refused.output, refused.output
        assert await db.fetchval(exists, name) == 0

        created = await run_cli(test_region, "db", "upgrade", "--create", env=env)
        assert created.exit_code == 0, created.output
        assert f"created database {name}" in created.output
        assert f"schema is at version {migrate.latest_version()}" in created.output
        assert await db.fetchval(exists, name) == 1

        again = await run_cli(test_region, "db", "upgrade", "--create", env=env)
        assert again.exit_code == 0 and "created" not in again.output, again.output
    finally:
        await drop_database(test_region.settings.database_url, name)
