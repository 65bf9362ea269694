"""`verwijsindex`: the operator's command line."""

from __future__ import annotations

from typing import Any

import click

from cli.db import db
from cli.demo import demo
from cli.errors import explain
from cli.parked import parked, rejected
from cli.partner import partner
from cli.portal import portal
from cli.region import region
from cli.retention import retention
from cli.schema import schema
from cli.stats import stats
from cli.status import status
from cli.subject import subject


class _OperatorCommands(click.Group):
    """Every command's failure ends in one or two lines that say what to do; the
    traceback only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(explain(exc)) from None


@click.group(cls=_OperatorCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="On an error, show the whole traceback.")
def main(debug: bool) -> None:
    """Operate a regional Verwijsindex.

    Connection settings come from the environment: VI_AMQP_URL, VI_DATABASE_URL,
    VI_MANAGEMENT_URL, VI_SMTP_URL, VI_MAIL_DIR, VI_PSEUDONYM_KEY. The defaults reach
    a local RabbitMQ and PostgreSQL.
    """


for command in (db, demo, parked, region, rejected, retention, schema, stats, status, subject):
    main.add_command(command)
main.add_command(partner)
main.add_command(portal)
