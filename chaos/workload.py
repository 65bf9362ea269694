"""The valid workload: every youth's story run against the index, step by step.

A story's steps run one after another; inside a step messages race. Each step asks
the model (chaos.model) what the index must answer, and the answer is compared on
arrival; the model's final state is what the database must hold at the end.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chaos.model import NoticeKey, YouthModel, family_match, receipt_outcome
from chaos.partner import Got, Partner
from chaos.plans import REGISTER, YouthPlan, surname_for, variant_of
from shared.dates import amsterdam_date
from testing.documents import register_body


@dataclass(frozen=True)
class Sent:
    """One valid-workload message, for the final accounting."""

    partner: str
    message_id: str
    type: str
    youth: str


@dataclass
class YouthResult:
    plan: YouthPlan
    model: YouthModel
    complete: bool = True
    failures: list[str] = field(default_factory=list)
    # Effects that may happen at most once (a race the rules leave open).
    optional: list[NoticeKey] = field(default_factory=list)
    # message_ids that must have a `duplicate` receipt besides their own.
    expect_duplicate_receipt: list[tuple[str, str]] = field(default_factory=list)
    lead_winner: str | None = None


class Stories:
    """Runs youth stories with a bound on how many are in flight."""

    def __init__(
        self,
        partners: dict[str, Partner],
        *,
        receipt_timeout: float,
        in_flight: int,
        now: Callable[[], datetime],
    ) -> None:
        self._partners = partners
        self._timeout = receipt_timeout
        self._gate = asyncio.Semaphore(in_flight)
        self._now = now
        self.sent: list[Sent] = []
        self.results: list[YouthResult] = []
        self.done = 0
        self.registrations_sent = 0
        # Every surname put into a message (for the privacy scan of logs and notices).
        self.surnames_sent: set[str] = set()

    async def run(self, plans: list[YouthPlan]) -> None:
        async def one(plan: YouthPlan) -> None:
            async with self._gate:
                result = await self._story(plan)
                self.results.append(result)
                self.done += 1

        await asyncio.gather(*(one(p) for p in plans))

    async def _ask(
        self,
        youth: str,
        partner: str,
        body: dict[str, Any],
        *,
        message_id: str | None = None,
    ) -> tuple[str, Got | None]:
        mid = message_id or str(uuid.uuid4())
        kind = str(body["type"])
        self.sent.append(Sent(partner, mid, kind, youth))
        if kind == "melding.register":
            self.registrations_sent += 1
        client = self._partners[partner]
        await client.send(kind, json.dumps(body).encode(), message_id=mid)
        return mid, await client.wait_receipt(mid, self._timeout)

    def _check(
        self, result: YouthResult, what: str, got: Got | None, expected: set[str] | str
    ) -> str | None:
        """The receipt in model notation; a failure is recorded when it is not one of
        `expected`, or when it never came (the story then stops)."""
        allowed = {expected} if isinstance(expected, str) else expected
        if got is None:
            result.failures.append(f"{what}: no receipt within {self._timeout:.0f} s")
            result.complete = False
            return None
        outcome = receipt_outcome(got.status, got.codes)
        if outcome not in allowed:
            result.failures.append(f"{what}: receipt {outcome}, expected {sorted(allowed)}")
        return outcome

    def _register_body(self, plan: YouthPlan, partner: str, ref: str) -> dict[str, Any]:
        youth: dict[str, Any] = {}
        if plan.surname is not None:
            rng = random.Random(f"{plan.index}-{partner}")
            youth = {"surname": variant_of(rng, plan.surname), "sex": plan.sex}
        elif plan.index % 7 == 0:
            # With a BSN a surname is ignored and must never be stored or logged.
            youth = {"surname": surname_for(random.Random(plan.index), plan.index), "sex": "F"}
        if "surname" in youth:
            self.surnames_sent.add(str(youth["surname"]))
        return register_body(
            ref,
            bsn=plan.bsn,
            birth_date=plan.other_birth_date.get(partner, plan.birth_date).isoformat(),
            municipality=plan.municipality,
            reporter=f"Melder {partner} {plan.index}",
            email=f"melder{plan.index}@{partner}.example",
            reported_at=plan.reported_at.get(partner, self._now()).isoformat(),
            **youth,
        )

    async def _story(self, plan: YouthPlan) -> YouthResult:
        model = YouthModel(plan.label, plan.bsn, plan.birth_date, plan.municipality)
        result = YouthResult(plan, model)
        try:
            await self._steps(plan, model, result)
        except Exception as exc:  # a bug in the run itself must not hide the others
            result.failures.append(f"story crashed: {type(exc).__name__}: {exc}")
            result.complete = False
        return result

    async def _steps(self, plan: YouthPlan, model: YouthModel, result: YouthResult) -> None:
        label = plan.label
        # 1. Every registrant at the same moment (two matcher replicas race on the youth).
        entries = [(p, plan.ref(p)) for p in plan.registrants]
        expected = model.register_together(entries, plan.other_birth_date.values())
        first_id = str(uuid.uuid4())
        asks = [
            self._ask(
                label,
                p,
                self._register_body(plan, p, ref),
                message_id=first_id if i == 0 else None,
            )
            for i, (p, ref) in enumerate(entries)
        ]
        if plan.concurrent_copy:
            p, ref = entries[0]
            copy = self._register_body(plan, p, ref)
            asks.append(self._ask(label, p, copy, message_id=first_id))
            result.expect_duplicate_receipt.append((p, first_id))
        answers = await asyncio.gather(*asks)
        for (p, _), (_, got), outcome in zip(entries, answers, expected, strict=False):
            self._check(result, f"register {p}", got, outcome)
        if not result.complete:
            return
        if plan.kind != "story":
            self._expect_sweep(plan, model, result)
            return

        # 2. Claims, informing, and the messages that must change nothing, at once.
        step: list[Awaitable[None]] = []
        if plan.claimants:
            step.append(self._claims(plan, model, result))
        for p, form in plan.informs.items():
            step.append(self._inform(plan, model, result, p, form))
        if plan.foreign is not None:
            step.append(self._foreign(plan, result))
        if plan.already_registered is not None:
            step.append(self._already_registered(plan, result))
        if plan.duplicate_ref is not None:
            step.append(self._duplicate_ref(plan, result))
        await asyncio.gather(*step)
        if not result.complete:
            return

        # 3. A withdrawal (and perhaps the same withdrawal again).
        if plan.withdraw is not None:
            p, reason = plan.withdraw
            for _ in range(2 if plan.withdraw_again else 1):
                outcome = model.withdraw(p, plan.ref(p), reason)
                withdrawal = {
                    "type": "melding.withdraw",
                    "melding_ref": plan.ref(p),
                    "reason": reason,
                }
                _, got = await self._ask(label, p, withdrawal)
                self._check(result, f"withdraw {p}", got, outcome)
                if not result.complete:
                    return

        # 4. A partner joins late: it matches the active ones and the archive, once.
        if plan.late is not None:
            q = plan.late
            outcome = model.register_late(q, plan.ref(q))
            _, got = await self._ask(label, q, self._register_body(plan, q, plan.ref(q)))
            self._check(result, f"late register {q}", got, outcome)
            if not result.complete:
                return

        # 5. The population register.
        if plan.brp is not None:
            now = self._now()
            if plan.brp == "moved":
                assert plan.bsn is not None and plan.moved_to is not None
                outcome = model.moved(plan.moved_to)
                body: dict[str, Any] = {
                    "type": "person.moved",
                    "bsn": plan.bsn,
                    "municipality": plan.moved_to,
                    "moved_at": now.isoformat(),
                }
            elif plan.brp == "deceased":
                assert plan.bsn is not None
                outcome = model.died()
                body = {
                    "type": "person.deceased",
                    "bsn": plan.bsn,
                    "died_on": (amsterdam_date(now) - timedelta(days=1)).isoformat(),
                }
            else:
                assert plan.unknown_bsn is not None
                outcome = "rejected:unknown_person"
                body = {"type": "person.deceased", "bsn": plan.unknown_bsn, "died_on": "2020-01-01"}
            _, got = await self._ask(label, REGISTER, body)
            self._check(result, f"brp {plan.brp}", got, outcome)

        # 6. A partner publishes an answered message again (its own crash recovery).
        if plan.replay:
            p = plan.registrants[0]
            body = self._register_body(plan, p, plan.ref(p))
            await self._partners[p].send(
                "melding.register", json.dumps(body).encode(), message_id=first_id
            )
            result.expect_duplicate_receipt.append((p, first_id))

    def _expect_sweep(self, plan: YouthPlan, model: YouthModel, result: YouthResult) -> None:
        """What the retention sweep must do to the single melding of a time case."""
        p = plan.registrants[0]
        if plan.kind == "reminder":
            model.remind(p)
        elif plan.kind == "expired":
            # The reminder is due as well; whether it goes before the expiry depends on
            # when the sweep sees the melding: at most once.
            result.optional.append(NoticeKey("inform.reminder", p, plan.ref(p), ""))
            model.end_by_system(p, "expired")
        else:
            model.end_by_system(p, "age_limit")

    async def _claims(self, plan: YouthPlan, model: YouthModel, result: YouthResult) -> None:
        claims = [(p, plan.ref(p)) for p in plan.claimants]
        mode, possible = model.claims_together(claims)
        answers = await asyncio.gather(
            *(
                self._ask(plan.label, p, {"type": "regie.claim", "melding_ref": ref})
                for p, ref in claims
            )
        )
        outcomes: dict[str, str | None] = {}
        for (p, ref), (_, got) in zip(claims, answers, strict=True):
            if mode == "one-wins" and p in possible:
                allowed = {"accepted", "rejected:regie_taken"}
            else:
                allowed = {model.claim_outcome(p, ref)}
            outcomes[p] = self._check(result, f"claim {p}", got, allowed)
        if mode == "one-wins" and result.complete:
            winners = [p for p, o in outcomes.items() if o == "accepted"]
            if len(winners) != 1:
                result.failures.append(f"claims: {len(winners)} accepted, expected exactly 1")
            if winners:
                result.lead_winner = winners[0]
                model.set_lead(winners[0])

    async def _inform(
        self,
        plan: YouthPlan,
        model: YouthModel,
        result: YouthResult,
        partner: str,
        form: str,
    ) -> None:
        ref = plan.ref(partner)
        on = amsterdam_date(plan.reported_at[partner])
        if form == "informed":
            outcome = model.inform(partner, ref, informed=("parents",), informed_on=on)
            body: dict[str, Any] = {
                "type": "melding.informed",
                "melding_ref": ref,
                "informed": ["parents"],
                "informed_on": on.isoformat(),
            }
        else:
            outcome = model.inform(
                partner, ref, deferred_reason="niet in het belang van de jeugdige"
            )
            body = {
                "type": "melding.informed",
                "melding_ref": ref,
                "deferred_reason": "niet in het belang van de jeugdige",
            }
        _, got = await self._ask(plan.label, partner, body)
        self._check(result, f"informed {partner}", got, outcome)

    async def _foreign(self, plan: YouthPlan, result: YouthResult) -> None:
        """Another partner's ref is unknown to the sender (and nothing changes)."""
        assert plan.foreign is not None
        attacker, victim, message_type = plan.foreign
        body: dict[str, Any] = {"type": message_type, "melding_ref": plan.ref(victim)}
        if message_type == "melding.withdraw":
            body["reason"] = "unjustified"
        elif message_type == "melding.informed":
            body["deferred_reason"] = "poging"
        _, got = await self._ask(plan.label, attacker, body)
        self._check(
            result, f"foreign {message_type} by {attacker}", got, "rejected:unknown_melding"
        )

    async def _already_registered(self, plan: YouthPlan, result: YouthResult) -> None:
        assert plan.already_registered is not None
        p = plan.already_registered
        body = self._register_body(plan, p, plan.ref(p, 2))
        _, got = await self._ask(plan.label, p, body)
        self._check(result, f"second melding by {p}", got, "rejected:already_registered")

    async def _duplicate_ref(self, plan: YouthPlan, result: YouthResult) -> None:
        """The partner's own ref again, on a youth nobody registered: nothing stored."""
        assert plan.duplicate_ref is not None and plan.duplicate_ref_bsn is not None
        p = plan.duplicate_ref
        body = register_body(
            plan.ref(p),
            bsn=plan.duplicate_ref_bsn,
            birth_date=plan.birth_date.isoformat(),
            municipality=plan.municipality,
            reported_at=(self._now() - timedelta(hours=1)).isoformat(),
        )
        _, got = await self._ask(plan.label, p, body)
        self._check(result, f"re-used ref by {p}", got, "rejected:duplicate_ref")


def expect_family_matches(
    results: list[YouthResult], families: list[tuple[YouthPlan, YouthPlan]]
) -> None:
    """Each pair of siblings must be told of each other once (model.family_match);
    when one of the two stories did not complete, the other's family notice may come
    (at most once) but need not."""
    by_label = {r.plan.label: r for r in results}
    for a, b in families:
        first, second = by_label.get(a.label), by_label.get(b.label)
        if first is None or second is None:
            continue
        counts = (len(first.model.notices), len(second.model.notices))
        family_match(first.model, second.model)
        if first.complete and second.complete:
            continue
        for result, before in zip((first, second), counts, strict=True):
            result.optional.extend(result.model.notices[before:])
            del result.model.notices[before:]


class RegisterDesk:
    """The population register as the run plays it: it answers every `person.lookup`
    at once with the family facts of the plans (the siblings' shared parent; no
    parents for everyone else), as `person.family` messages that need a receipt like
    any other. A copy of a lookup it has seen (same message_id) is dropped; a lookup
    asked again by a sweep (a new message_id) is answered again."""

    def __init__(self, stories: Stories, register: Partner, plans: list[YouthPlan]) -> None:
        self._stories = stories
        self._register = register
        self._parents = {p.bsn: [p.parent_bsn] for p in plans if p.bsn and p.parent_bsn}
        self._labels = {p.bsn: p.label for p in plans if p.bsn}
        self._seen: set[str | None] = set()
        self.answered = 0

    async def run(self, stop: asyncio.Event) -> None:
        position = 0
        while not stop.is_set():
            received = self._register.received
            while position < len(received):
                got = received[position]
                position += 1
                if got.type == "person.lookup" and got.message_id not in self._seen:
                    self._seen.add(got.message_id)
                    await self._answer(got)
            await asyncio.sleep(0.2)

    async def _answer(self, lookup: Got) -> None:
        bsn = str(lookup.body.get("bsn"))
        body = {
            "type": "person.family",
            "lookup_id": lookup.body.get("lookup_id"),
            "bsn": bsn,
            "parents": self._parents.get(bsn, []),
            "address": None,
        }
        mid = str(uuid.uuid4())
        self._stories.sent.append(
            Sent(self._register.id, mid, "person.family", self._labels.get(bsn, "?"))
        )
        await self._register.send("person.family", json.dumps(body).encode(), message_id=mid)
        self.answered += 1


def utc_now() -> datetime:
    return datetime.now(UTC)
