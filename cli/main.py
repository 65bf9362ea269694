"""`verwijsindex`: the operator's command line."""

from __future__ import annotations

import click

from cli.db import db
from cli.demo import demo
from cli.parked import parked, rejected
from cli.partner import partner
from cli.region import region
from cli.retention import retention
from cli.schema import schema
from cli.stats import stats
from cli.status import status
from cli.subject import subject


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate a regional Verwijsindex.

    Connection settings come from the environment: VI_AMQP_URL, VI_DATABASE_URL,
    VI_MANAGEMENT_URL, VI_SMTP_URL, VI_MAIL_DIR, VI_PSEUDONYM_KEY. The defaults reach
    a local RabbitMQ and PostgreSQL.
    """


for command in (db, demo, parked, region, rejected, retention, schema, stats, status, subject):
    main.add_command(command)
main.add_command(partner)
