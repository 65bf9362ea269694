"""Privacy by design: identities only under a keyed hash, and no BSN, surname or birth
date in any table, log line, notice or e-mail after a realistic run."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import structlog

from services.retention.sweep import Sweep
from shared.amqp.topology import EMAIL_QUEUE, NOTIFIER_QUEUE
from shared.logs import configure_logging
from shared.partner_client import PartnerClient, Received
from shared.pseudonym import Pseudonymizer
from tests.conftest import System
from tests.integration.test_matching import Mailbox, codes, mailboxes
from tests.support import (
    RegionUnderTest,
    eventually,
    mails,
    queued_messages,
    register_body,
    valid_bsn,
)

SURNAME = "Vlietstraatsma"  # the youth without a BSN
SURNAME_TYPED = "  vlietSTRAATSMA "
BIRTH_DATES = (date(2013, 11, 23), date(2011, 10, 17))


def date_forms(d: date) -> list[str]:
    return [
        d.isoformat(),
        d.strftime("%d-%m-%Y"),
        d.strftime("%Y%m%d"),
        d.strftime("%d/%m/%Y"),
        d.strftime("%d.%m.%Y"),
        f"{d.day}-{d.month}-{d.year}",
    ]


def _uncache_structlog_loggers() -> None:
    """Module-level loggers cache their configuration on first use (when a service or
    the CLI configured structlog before): make them pick up the current one."""
    for module in list(sys.modules.values()):
        for value in list(getattr(module, "__dict__", {}).values()):
            if isinstance(value, structlog._config.BoundLoggerLazyProxy):
                value.__dict__.pop("bind", None)


@contextmanager
def every_log_line() -> Iterator[io.StringIO]:
    """The services' own JSON logging (structlog, at debug) and every stdlib record
    (aio-pika, asyncpg, ...), all written into one buffer."""
    sink = io.StringIO()
    before = structlog.get_config()
    configure_logging("privacy-test", "debug")
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sink), cache_logger_on_first_use=False
    )
    _uncache_structlog_loggers()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        structlog.configure(**before)
        structlog.contextvars.clear_contextvars()
        _uncache_structlog_loggers()


async def scan_database(db: asyncpg.Connection[Any], forbidden: list[str]) -> list[str]:
    """Every text-like and bytea column of every table, searched for each value."""
    columns = await db.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public'
             AND data_type IN ('text', 'character varying', 'character', 'bytea', 'jsonb',
                               'json', 'ARRAY')"""
    )
    assert {c["table_name"] for c in columns} >= {"youth", "melding", "audit_log", "outbox"}
    found = []
    for c in columns:
        table, column = c["table_name"], c["column_name"]
        if c["data_type"] == "bytea":
            values = [
                bytes(v).decode("latin-1")
                for v in await db.fetchval(f'SELECT array_agg("{column}") FROM "{table}"') or []
                if v is not None
            ]
        else:
            text = await db.fetchval(f'SELECT string_agg("{column}"::text, chr(10)) FROM "{table}"')
            values = [text or ""]
        for value in values:
            for needle in forbidden:
                if needle.lower() in value.lower():
                    found.append(f"{table}.{column}: {needle}")
    return found


def mail_text(message: EmailMessage) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    return headers + "\n" + str(message.get_content())


async def test_no_bsn_surname_or_birth_date_in_any_table_log_notice_or_mail(
    test_region: RegionUnderTest,
    system: System,
    partners: dict[str, PartnerClient],
    db: asyncpg.Connection[Any],
) -> None:
    bsn, other_bsn, unknown_bsn = valid_bsn(501), valid_bsn(502), valid_bsn(503)
    with every_log_line() as log_sink:
        for name in ("ingest", "matcher", "notifier"):
            await system.start(name)
        matcher = system.runtimes[1]
        box = mailboxes(partners)
        born = BIRTH_DATES[0].isoformat()
        received: list[Received] = []
        lookups_to: dict[str, int] = {}

        # Register and match (with a BSN), take the lead, withdraw, join from the archive.
        await box["school"].register("S-1", bsn=bsn, birth_date=born)
        await box["jeugdteam"].register("T-1", bsn=bsn, birth_date=born)
        assert (await box["jeugdteam"].claim("T-1"))["status"] == "accepted"
        assert codes(await box["school"].register("S-2", bsn=bsn, birth_date=born)) == [
            "already_registered"
        ]
        await box["huisarts"].register("H-1", bsn=bsn, birth_date=born)
        await box["school"].withdraw("S-1", "risk_ended")
        await box["jgz"].register("G-1", bsn=bsn, birth_date=born)
        # A youth without a BSN, matched on surname + birth date + sex.
        nameless = {"birth_date": BIRTH_DATES[1].isoformat(), "sex": "M"}
        await box["huisarts"].register("H-2", surname=SURNAME, **nameless)
        await box["jgz"].register("G-2", surname=SURNAME_TYPED, **nameless)
        await box["jgz"].notice("match.notice", "G-2")
        # Messages that are refused must not echo what they carried either.
        bad = register_body("S-3", bsn=bsn[:-1] + str((int(bsn[-1]) + 1) % 10), birth_date=born)
        assert codes(await box["school"].send(bad)) == ["bsn_checksum"]
        future = register_body("S-4", bsn=other_bsn, birth_date="2099-12-31")
        assert "birth_date_future" in codes(await box["school"].send(future))
        # The population register: a move and a death; and a person not known here.
        now = datetime.now(UTC).isoformat()
        moved = {"type": "person.moved", "bsn": bsn, "municipality": "0599", "moved_at": now}
        assert (await box["brp"].send(moved))["status"] == "accepted"
        unknown = {**moved, "bsn": unknown_bsn}
        assert codes(await box["brp"].send(unknown)) == ["unknown_person"]
        # Reminders and escalation, by the retention sweep, two weeks on.
        region = await matcher.region.get()
        sweep = Sweep(matcher.pool, matcher.outbox, region, matcher.pseudonyms)
        report = await sweep.run(datetime.now(UTC) + timedelta(days=15))
        assert report.counts.get("inform_reminded", 0) >= 4
        await box["jgz"].notice("inform.reminder", "G-1")
        await box["jgz"].notice("regie.notice", "G-2")  # the nameless match escalated
        dead = {"type": "person.deceased", "bsn": bsn, "died_on": date.today().isoformat()}
        assert (await box["brp"].send(dead))["status"] == "accepted"
        await box["jgz"].notice("melding.ended", "G-1")

        async def mails_settled() -> bool:
            waiting = [await queued_messages(matcher, q) for q in (NOTIFIER_QUEUE, EMAIL_QUEUE)]
            return (
                not any(waiting)
                and not await db.fetchval("SELECT count(*) FROM outbox")
                and await db.fetchval("SELECT count(*) FROM sent_email")
                == len(list(test_region.mail_dir.glob("*.eml")))
            )

        await eventually(mails_settled)
        sent = await db.fetchval("SELECT count(*) FROM sent_email")
        await asyncio.sleep(0.5)  # what a consumer still held has landed by now
        assert await mails_settled()
        assert await db.fetchval("SELECT count(*) FROM sent_email") == sent
        for pid, mailbox in box.items():
            await mailbox.rest(0.5)
            received.extend(mailbox.everything)
            lookups_to[pid] = len([m for m in mailbox.everything if m.type == "person.lookup"])
        await system.close()

    # What was seen, to be sure the scan below looks at something real.
    types = {m.type for m in received}
    assert {"match.notice", "regie.notice", "youth.moved", "inform.reminder"} <= types
    all_mail = mails(test_region)
    subjects = " | ".join(str(m["Subject"]) for m in all_mail)
    for kind in ("Match in de Verwijsindex", "Nieuwe match", "Regie vastgelegd", "Verhuizing"):
        assert kind in subjects, kind
    assert "Herinnering" in subjects and "Geen regie" in subjects
    log_text = log_sink.getvalue()
    json_lines = [line for line in log_text.splitlines() if line.startswith("{")]
    events = {json.loads(line)["event"] for line in json_lines}
    assert {"notify_fanned_out", "emails_sent", "sweep_done"} <= events

    forbidden = [bsn, other_bsn, unknown_bsn, SURNAME, SURNAME_TYPED.strip()]
    for d in BIRTH_DATES:
        forbidden.extend(date_forms(d))
    # The one message that carries a BSN (contract §8) goes to the register only.
    assert {pid for pid, n in lookups_to.items() if n} == {"brp"}
    notices_text = "\n".join(
        json.dumps(m.body, ensure_ascii=False) for m in received if m.type != "person.lookup"
    )
    outputs = {
        "log": log_text,
        "notices": notices_text,
        "mail": "\n\n".join(mail_text(m) for m in all_mail),
    }
    leaks = [
        f"{where}: {needle}"
        for where, text in outputs.items()
        for needle in forbidden
        if needle.lower() in text.lower()
    ]
    assert leaks == [], leaks
    table_needles = [bsn, other_bsn, unknown_bsn, SURNAME, SURNAME_TYPED.strip()]
    assert await scan_database(db, table_needles) == []


async def test_identities_are_stored_under_a_keyed_hash(
    pipeline: System, partners: dict[str, PartnerClient], db: asyncpg.Connection[Any]
) -> None:
    school = Mailbox(partners["school"])
    bsn = valid_bsn(504)
    await school.register("S-1", bsn=bsn)
    await school.register("S-2", surname=f" {SURNAME.upper()}", birth_date="2011-10-17", sex="X")
    stored = {bytes(r["identity_hash"]) for r in await db.fetch("SELECT identity_hash FROM youth")}
    keyed = Pseudonymizer("test-pseudonym-key")  # the key the test services run with
    assert stored == {
        keyed.youth_by_bsn(bsn),
        keyed.youth_without_bsn(SURNAME.lower(), date(2011, 10, 17), "X"),
    }
    # Without the key the hash cannot be rebuilt from a BSN.
    assert Pseudonymizer("another-key").youth_by_bsn(bsn) not in stored
    assert hashlib.sha256(bsn.encode()).digest() not in stored
    assert await scan_database(db, [bsn, SURNAME]) == []
