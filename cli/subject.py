"""`verwijsindex subject ...`: access and erasure requests."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from cli.common import run, settings
from cli.output import emit_json
from shared.announce import announce
from shared.contract.validation import passes_11_proef
from shared.index import subject as rights
from shared.service import Runtime


def _checked_bsn(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A mistyped BSN would find nothing and read as 'nothing stored': say it instead."""
    if value is not None and not passes_11_proef(value):
        raise click.BadParameter("not a valid BSN: it must be 9 digits that pass the 11-proef")
    return value


def _who(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--bsn", callback=_checked_bsn, help="The youth's BSN (9 digits)."),
            click.option("--surname", help="Without a BSN: surname ..."),
            click.option(
                "--birth-date", type=click.DateTime(["%Y-%m-%d"]), help="... birth date ..."
            ),
            click.option("--sex", type=click.Choice(["M", "F", "X"]), help="... and sex."),
            click.option(
                "--operator",
                default=getpass.getuser,
                show_default="your login",
                help="Who handles the request (written to the audit log).",
            ),
        ]
    ):
        func = option(func)
    return func


def _identity(
    runtime: Runtime, bsn: str | None, surname: str | None, birth: datetime | None, sex: str | None
) -> bytes:
    try:
        return rights.identity(
            runtime.pseudonyms,
            bsn=bsn,
            surname=surname,
            birth_date=birth.date() if birth else None,
            sex=sex,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _nothing_stored() -> click.ClickException:
    message = "nothing is stored on this youth"
    if settings().uses_dev_key:
        # The youth is found by a keyed hash: under another key than the services',
        # everything looks absent.
        message += (
            " under the development key; VI_PSEUDONYM_KEY is not set. Set it to the"
            " services' key and ask again"
        )
    return click.ClickException(message)


@click.group()
def subject() -> None:
    """Requests from a youth or parents: see everything stored, or erase it."""


@subject.command("export")
@_who
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file."
)
def export_cmd(
    bsn: str | None,
    surname: str | None,
    birth_date: datetime | None,
    sex: str | None,
    operator: str,
    output: Path | None,
) -> None:
    """Everything stored on a youth, as JSON (audited)."""

    async def go() -> dict[str, Any] | None:
        runtime = await Runtime.open("verwijsindex-cli", settings())
        try:
            key = _identity(runtime, bsn, surname, birth_date, sex)
            region = await runtime.region.get()
            async with runtime.pool.acquire() as conn, conn.transaction():
                return await rights.export(
                    conn, region, key, runtime.pseudonyms.audit_ref(key), operator=operator
                )
        finally:
            await runtime.close()

    doc = run(go())
    if doc is None:
        raise _nothing_stored()
    if output is not None:
        output.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        click.echo(f"written to {output}")
    else:
        emit_json(doc)


@subject.command("erase")
@_who
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_cmd(
    bsn: str | None,
    surname: str | None,
    birth_date: datetime | None,
    sex: str | None,
    operator: str,
    yes: bool,
) -> None:
    """Purge everything stored on a youth (audited); owners of active meldingen get
    melding.ended with reason `erased`."""
    if not yes:
        click.confirm("Erase everything stored on this youth? This cannot be undone", abort=True)

    async def go() -> int | None:
        runtime = await Runtime.open("verwijsindex-cli", settings())
        try:
            key = _identity(runtime, bsn, surname, birth_date, sex)
            region = await runtime.region.get()
            async with runtime.outbox.unit_of_work() as uow:
                result = await rights.erase(
                    uow.conn,
                    region,
                    key,
                    runtime.pseudonyms.audit_ref(key),
                    operator=operator,
                    now=datetime.now(UTC),
                )
                if result is None:
                    return None
                removed, decisions = result
                uow.emit(*announce(region, decisions))
                return removed
        finally:
            await runtime.close()

    removed = run(go())
    if removed is None:
        raise _nothing_stored()
    click.echo(f"erased: {removed} melding(en) and everything linked to them")
