"""`verwijsindex demo users`: every demo partner gets a login that works, and the
command prints it with its password and URL, so that a newcomer can connect."""

from __future__ import annotations

import uuid
from pathlib import Path

import aio_pika

from shared.amqp.management import Management
from tests.support import RegionUnderTest, run_cli

REGION_FILE = """
[region]
name = "Demo"
regie_deadline_days = 14
inform_deadline_days = 14

[[municipality]]
code = "0363"
name = "Amsterdam"
coordinator_email = "regie@amsterdam.example"

[[partner]]
id = "school"
broker_user = "{prefix}-school"
name = "Basisschool"
sector = "onderwijs"
roles = ["reporter"]
"""


async def test_demo_users_prints_working_logins(
    test_region: RegionUnderTest, management: Management, tmp_path: Path
) -> None:
    login = f"d{uuid.uuid4().hex[:8]}-school"  # its own login: the password changes
    region_file = tmp_path / "demo.toml"
    region_file.write_text(REGION_FILE.format(prefix=login.removesuffix("-school")))
    try:
        result = await run_cli(test_region, "demo", "users", "--region", str(region_file))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[1].split() == ["partner", "login", "password", "AMQP", "URL"]
        [line] = [line for line in lines if login in line]
        partner, shown_login, password, url = line.split()
        assert (partner, shown_login, password) == ("school", login, login)
        assert url.startswith(f"amqp://{login}:{login}@")
        connection = await aio_pika.connect(url)  # the printed URL logs in
        async with connection:
            channel = await connection.channel()
            await channel.get_queue("partner.school", ensure=True)  # and may read its mailbox
    finally:
        await management.delete_user(login)
