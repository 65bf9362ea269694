"""The end of a run: count what was sent and answered, compare every effect partners
saw and the database with the model, and look at the queues."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import asyncpg

from chaos.hostile import BadMessage
from chaos.model import NoticeKey
from chaos.partner import Got, Partner
from chaos.plans import REGISTER
from chaos.workload import Sent, YouthResult
from shared.envelopes import derived_id

# Every notice the model predicts (chaos.model.NoticeKey); any other type a partner
# receives counts as unexpected. Receipts and the register's person.lookup are
# answers and questions, checked apart. Together the two are every outbound type of
# the contract (tests/unit/test_chaos_match_ended.py keeps it so).
NOTICE_TYPES = (
    "match.notice",
    "regie.notice",
    "melding.ended",
    "match.ended",
    "youth.moved",
    "inform.reminder",
    "family.notice",
)
NOT_NOTICES = ("receipt", "person.lookup")


@dataclass
class Check:
    name: str
    ok: bool
    detail: Any = None


@dataclass
class Report:
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: Any = None) -> None:
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def notice_keys(partner: str, got: Got) -> list[NoticeKey]:
    """The effects one notice stands for (a match.notice names one or more)."""
    body = got.body
    ref = str(body.get("melding_ref", ""))
    if got.type == "match.notice":
        return [
            NoticeKey("match.notice", partner, ref, (str(c["partner"]), bool(c["archived"])))
            for c in body.get("counterparts") or []
        ]
    if got.type == "regie.notice":
        lead = body.get("lead") or {}
        detail = str(lead.get("partner", "")) + ("/escalated" if body.get("escalated") else "")
        return [NoticeKey("regie.notice", partner, ref, detail)]
    if got.type == "melding.ended":
        return [NoticeKey("melding.ended", partner, ref, str(body.get("reason")))]
    if got.type == "match.ended":
        return [NoticeKey("match.ended", partner, ref, "")]
    if got.type == "youth.moved":
        return [NoticeKey("youth.moved", partner, ref, str(body.get("municipality")))]
    if got.type == "inform.reminder":
        return [NoticeKey("inform.reminder", partner, ref, "")]
    if got.type == "family.notice":
        other = (body.get("counterpart") or {}).get("partner")
        return [NoticeKey("family.notice", partner, ref, f"{other}/{body.get('relation')}")]
    return [NoticeKey(got.type or "?", partner, ref, "")]


@dataclass
class NoticeTally:
    ids_by_key: dict[NoticeKey, set[str]]
    deliveries: Counter[str]  # message_id -> times delivered (notices and receipts)
    types: dict[str, str] = field(default_factory=dict)  # message_id -> type
    # Copies the broker delivered as new (not redelivered): more than one means the
    # index published the message more than once (a redelivered copy means the
    # partner's own ack was lost, e.g. in the broker restart).
    fresh: Counter[str] = field(default_factory=Counter)

    @property
    def published_more_than_once(self) -> int:
        return sum(n - 1 for n in self.fresh.values() if n > 1)

    @property
    def duplicate_deliveries_by_type(self) -> dict[str, int]:
        by_type: Counter[str] = Counter()
        for mid, n in self.deliveries.items():
            if n > 1:
                by_type[self.types.get(mid, "?")] += n - 1
        return dict(by_type)

    @property
    def duplicate_deliveries(self) -> int:
        return sum(n - 1 for n in self.deliveries.values() if n > 1)


def tally(partners: Iterable[Partner]) -> NoticeTally:
    ids: dict[NoticeKey, set[str]] = defaultdict(set)
    deliveries: Counter[str] = Counter()
    types: dict[str, str] = {}
    fresh: Counter[str] = Counter()
    for partner in partners:
        for got in partner.received:
            if got.message_id is not None:
                delivery = f"{partner.id}/{got.message_id}"
                deliveries[delivery] += 1
                types[delivery] = got.type
                if not got.redelivered:
                    fresh[delivery] += 1
            if got.type in NOT_NOTICES:
                continue  # answers, and the register's questions (checked apart)
            for notice in notice_keys(partner.id, got):
                ids[notice].add(got.message_id or "")
    return NoticeTally(ids, deliveries, types, fresh)


def expected_notices(results: Iterable[YouthResult]) -> tuple[set[NoticeKey], set[NoticeKey]]:
    """(must arrive exactly once, may arrive at most once), for complete stories."""
    must: set[NoticeKey] = set()
    may: set[NoticeKey] = set()
    for result in results:
        if result.complete:
            must.update(result.model.notices)
            may.update(result.optional)
    return must, may


def incomplete_labels(results: Iterable[YouthResult]) -> set[str]:
    return {r.plan.label for r in results if not r.complete}


def check_notices(
    report: Report, partners: list[Partner], results: list[YouthResult]
) -> NoticeTally:
    counted = tally(partners)
    must, may = expected_notices(results)
    skipped = incomplete_labels(results)
    observed = {k for k in counted.ids_by_key if k.melding_ref.split("-")[0] not in skipped}
    missing = sorted(must - observed)
    unexpected = sorted(observed - must - may)
    twice = sorted(k for k, ids in counted.ids_by_key.items() if len(ids) > 1)
    report.figures["notices_expected"] = len(must)
    report.figures["notices_delivered"] = len(must & observed)
    report.figures["notices_optional_seen"] = len(may & observed)
    report.figures["duplicate_effects"] = len(twice)
    report.figures["duplicate_deliveries"] = counted.duplicate_deliveries
    report.figures["duplicate_deliveries_by_type"] = counted.duplicate_deliveries_by_type
    report.figures["duplicate_deliveries_published_twice"] = counted.published_more_than_once
    # The one message with a BSN (contract §8) goes to population registers only.
    lookups = Counter(p.id for p in partners for g in p.received if g.type == "person.lookup")
    report.figures["person_lookups_delivered"] = sum(lookups.values())
    report.figures["family_notices_expected"] = sum(k.kind == "family.notice" for k in must)
    report.figures["match_ended_expected"] = sum(k.kind == "match.ended" for k in must)
    report.figures["match_ended_delivered"] = sum(k.kind == "match.ended" for k in must & observed)
    report.check(
        "person.lookup only to the population register",
        set(lookups) <= {REGISTER},
        dict(lookups),
    )
    report.check("every expected notice delivered", not missing, [str(k) for k in missing[:20]])
    report.check("no unexpected notice", not unexpected, [str(k) for k in unexpected[:20]])
    report.check(
        "duplicate effects 0 (no effect twice under different message_ids)",
        not twice,
        [str(k) for k in twice[:20]],
    )
    return counted


def check_receipts(
    report: Report,
    partners: dict[str, Partner],
    sent: list[Sent],
    bad: list[BadMessage],
    results: list[YouthResult],
    rejected_ids: Counter[str],
) -> None:
    valid_ids = {(s.partner, s.message_id) for s in sent}
    unanswered = sorted(f"{p}/{m}" for p, m in valid_ids if partners[p].final_receipt(m) is None)
    plain = {
        (b.partner, b.message_id) for b in bad if b.user_id == "" and not b.answered_without_id
    }
    plain_sends = Counter(
        (b.partner, b.message_id) for b in bad if b.user_id == "" and not b.answered_without_id
    )
    bad_unanswered: list[str] = []
    bad_accepted: list[str] = []
    for p, m in plain:
        assert m is not None
        got = partners[p].final_receipt(m)
        if got is None:
            bad_unanswered.append(f"{p}/{m}")
        elif got.status != "rejected":
            bad_accepted.append(f"{p}/{m}: {got.status}")
    # A message_id sent again gets a `duplicate` receipt for the copy, besides the one
    # final receipt, also when the copy's first handling was cut short (ingest binds
    # each delivery to its publish, `shared/db/arrivals.py`). Not always: a partner
    # that re-publishes what the broker did not confirm can have two publishes of one
    # id in flight at once, and a kill can fall between a confirmed ack and its
    # record; docs/reliability.md, "Duplicate receipts", lists these cases.
    resent = [(p, m) for (p, m), n in plain_sends.items() if m is not None and n > 1]
    resent += [pm for result in results for pm in result.expect_duplicate_receipt]
    resent_without_final = [f"{p}/{m}" for p, m in resent if partners[p].final_receipt(m) is None]
    resent_with_duplicate = sum(
        1
        for p, m in resent
        if any(g.status == "duplicate" for g in partners[p].receipts.get(m, ()))
    )
    report.figures["resent_ids"] = len(resent)
    report.figures["resent_ids_answered_duplicate"] = resent_with_duplicate
    # Without a usable message_id: one receipt per distinct (partner, routing key, body).
    without_id_expected: dict[str, set[str]] = defaultdict(set)
    for b in bad:
        if b.user_id == "" and b.answered_without_id:
            without_id_expected[b.partner].add(b.digest())
    without_id_missing = {
        p: len(d) - len({g.message_id for g in partners[p].receipts.get(None, ())})
        for p, d in without_id_expected.items()
    }
    no_user = {b.message_id for b in bad if b.user_id is None and b.message_id is not None}
    not_in_rejected = sorted(m for m in no_user if m not in rejected_ids)
    strangers_in_rejected = sorted(m for m in rejected_ids if m not in no_user)

    receipted = len(valid_ids) - len(unanswered)
    bad_receipted = len(plain) - len(bad_unanswered)
    without_id_got = sum(len(d) for d in without_id_expected.values()) - sum(
        max(0, n) for n in without_id_missing.values()
    )
    f = report.figures
    f["sent"] = (
        len(valid_ids)
        + len(plain)
        + sum(len(d) for d in without_id_expected.values())
        + len(no_user)
    )
    f["receipted"] = receipted + bad_receipted + without_id_got
    f["in_vi_rejected"] = len(no_user) - len(not_in_rejected)
    f["lost"] = f["sent"] - f["receipted"] - f["in_vi_rejected"]
    f["valid_sent"] = len(valid_ids)
    f["valid_receipted"] = receipted
    f["bad_sent"] = len(bad)
    f["bad_distinct_ids"] = len(plain)
    f["bad_receipted"] = bad_receipted
    f["bad_without_usable_id"] = sum(len(d) for d in without_id_expected.values())
    f["bad_without_user_id"] = len(no_user)
    f["duplicate_receipts"] = sum(
        1
        for p in partners.values()
        for gs in p.receipts.values()
        for g in gs
        if g.status == "duplicate"
    )
    report.check("lost 0: every valid message receipted", not unanswered, unanswered[:20])
    report.check("every bad message receipted", not bad_unanswered, bad_unanswered[:20])
    report.check("no bad message accepted", not bad_accepted, bad_accepted[:20])
    report.check(
        "every bad message without a usable message_id answered once",
        all(n <= 0 for n in without_id_missing.values()),
        without_id_missing,
    )
    report.check(
        "every message without user_id in vi.rejected (and nothing else)",
        not not_in_rejected and not strangers_in_rejected,
        {"missing": not_in_rejected[:10], "strangers": strangers_in_rejected[:10]},
    )
    report.check(
        "a re-used message_id keeps its one final receipt (and no second effect)",
        not resent_without_final and resent_with_duplicate > 0 if resent else True,
        {
            "without final receipt": resent_without_final[:20],
            "answered duplicate": f"{resent_with_duplicate} of {len(resent)}",
        },
    )
    story_failures = [f"{r.plan.label}: {x}" for r in results for x in r.failures]
    report.figures["story_receipt_mismatches"] = len(story_failures)
    report.check("every receipt as the model predicts", not story_failures, story_failures[:30])


async def check_database(
    report: Report, conn: asyncpg.Connection[Any], results: list[YouthResult]
) -> None:
    rows = await conn.fetch(
        """SELECT m.partner_id, m.melding_ref, m.state, m.end_reason, m.archive_signalled,
                  m.informed, m.informed_on, m.deferred_reason,
                  m.inform_reminded_at IS NOT NULL AS reminded,
                  y.id AS youth_id, y.municipality, y.birth_date
           FROM melding m JOIN youth y ON y.id = m.youth_id"""
    )
    by_ref = {(r["partner_id"], r["melding_ref"]): r for r in rows}
    groups = await conn.fetch(
        """SELECT g.id, g.youth_id, lm.partner_id AS lead_partner
           FROM match_group g LEFT JOIN melding lm ON lm.id = g.lead_melding_id
           WHERE g.ended_at IS NULL"""
    )
    members = await conn.fetch(
        """SELECT mm.match_id, m.partner_id FROM match_member mm
           JOIN melding m ON m.id = mm.melding_id JOIN match_group g ON g.id = mm.match_id
           WHERE g.ended_at IS NULL AND m.state = 'active'"""
    )
    open_by_youth: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for g in groups:
        open_by_youth[g["youth_id"]].append(g)
    active_members: dict[Any, set[str]] = defaultdict(set)
    for m in members:
        active_members[m["match_id"]].add(m["partner_id"])

    mismatches: list[str] = []
    known: set[tuple[str, str]] = set()
    youths_expected = 0
    compared = 0
    for result in results:
        if not result.complete:
            continue
        compared += 1
        model, label = result.model, result.plan.label
        youth_ids: set[int] = set()
        for m in model.meldingen.values():
            known.add((m.partner, m.ref))
            row = by_ref.get((m.partner, m.ref))
            if m.state == "gone":
                if row is not None:
                    mismatches.append(f"{label} {m.partner}: stored, expected gone")
                continue
            if row is None:
                mismatches.append(f"{label} {m.partner}: missing, expected {m.state}")
                continue
            youth_ids.add(row["youth_id"])
            want: dict[str, Any] = {"state": m.state}
            if m.state == "archived":
                want |= {"end_reason": m.end_reason, "archive_signalled": m.archive_signalled}
            else:
                want |= {
                    "informed": list(m.informed) if m.informed else None,
                    "informed_on": m.informed_on,
                    "deferred_reason": m.deferred_reason,
                }
            for column, value in want.items():
                if row[column] != value:
                    mismatches.append(
                        f"{label} {m.partner}: {column}={row[column]!r}, expected {value!r}"
                    )
            if result.plan.kind == "reminder" and not row["reminded"]:
                mismatches.append(f"{label} {m.partner}: no inform reminder recorded")
        if not model.exists:
            continue
        youths_expected += 1
        if len(youth_ids) != 1:
            mismatches.append(f"{label}: meldingen on {len(youth_ids)} youth rows")
            continue
        youth_id = youth_ids.pop()
        some = next(by_ref[(m.partner, m.ref)] for m in model.stored)
        if some["municipality"] != model.municipality:
            mismatches.append(
                f"{label}: municipality {some['municipality']}, expected {model.municipality}"
            )
        if some["birth_date"] != model.birth_date:
            mismatches.append(f"{label}: birth date differs from the earliest given")
        open_groups = open_by_youth.get(youth_id, [])
        if len(open_groups) != (1 if model.group_open else 0):
            mismatches.append(
                f"{label}: {len(open_groups)} open groups, expected {int(model.group_open)}"
            )
            continue
        if open_groups:
            g = open_groups[0]
            want_members = {m.partner for m in model.active}
            if active_members[g["id"]] != want_members:
                mismatches.append(
                    f"{label}: group members {sorted(active_members[g['id']])}, "
                    f"expected {sorted(want_members)}"
                )
            if g["lead_partner"] != model.lead:
                mismatches.append(f"{label}: lead {g['lead_partner']}, expected {model.lead}")
    skipped = incomplete_labels(results)
    strangers = sorted(
        f"{p}/{ref}"
        for p, ref in by_ref
        if (p, ref) not in known and ref.split("-")[0] not in skipped
    )
    youth_rows = await conn.fetchval("SELECT count(*) FROM youth")
    outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    f = report.figures
    f["youths_compared"] = compared
    f["db_meldingen"] = {
        state: sum(1 for r in rows if r["state"] == state) for state in ("active", "archived")
    }
    f["db_open_groups"] = len(groups)
    f["db_leads"] = sum(1 for g in groups if g["lead_partner"] is not None)
    f["db_mismatches"] = len(mismatches)
    report.check("database equals the model", not mismatches, mismatches[:30])
    report.check(
        "no melding the model does not know (bad input had no effect)",
        not strangers,
        strangers[:20],
    )
    if not skipped:
        report.check(
            "youth rows equal the model",
            youth_rows == youths_expected,
            {"db": youth_rows, "model": youths_expected},
        )
    report.check("outbox empty", outbox == 0, outbox)


def check_email(
    report: Report, messages: Iterable[EmailMessage], sent_rows: set[str], partners: list[Partner]
) -> list[tuple[str, str]]:
    """What reached the SMTP server: every e-mail recorded as sent, every match event's
    e-mail to its coordinator, and how many arrived twice. Returns (name, text) of
    every e-mail for the privacy scan."""
    texts: list[tuple[str, str]] = []
    arrivals: Counter[str] = Counter()
    for message in messages:
        mid = str(message["Message-ID"]).strip().strip("<>").split("@")[0]
        arrivals[mid] += 1
        body = message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""
        texts.append((f"e-mail {mid}", f"{message['Subject']}\n{text}"))
    received = set(arrivals)
    never_arrived = sorted(sent_rows - received)
    unrecorded = sorted(received - sent_rows)
    events = {
        got.correlation_id
        for p in partners
        for got in p.received
        if got.type == "match.notice" and got.correlation_id
    }
    no_coordinator = sorted(
        e for e in events if str(derived_id(uuid.UUID(e), "email", "coordinator")) not in received
    )
    twice = sorted(mid for mid, n in arrivals.items() if n > 1)
    report.figures["emails_received"] = sum(arrivals.values())
    report.figures["emails_distinct"] = len(arrivals)
    report.figures["emails_recorded_sent"] = len(sent_rows)
    report.figures["emails_sent_twice"] = len(twice)
    report.figures["match_events"] = len(events)
    report.check(
        "every e-mail recorded as sent reached the SMTP server",
        not never_arrived,
        never_arrived[:10],
    )
    report.check(
        "every e-mail that reached the SMTP server is recorded as sent",
        not unrecorded,
        unrecorded[:10],
    )
    report.check(
        "every match event e-mailed its coordinator", not no_coordinator, no_coordinator[:10]
    )
    return texts
