"""What the run will do: youths, each with a small story — which partners register
(matches), who claims the lead, who informs, who withdraws, who joins late, what the
population register reports — and a few time-driven cases for the retention sweep.
Drawn from a seeded random generator, so a seed repeats a run's plan.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from chaos.model import WithdrawReason
from shared.contract.validation import example_bsn
from shared.dates import add_years, amsterdam_date

REPORTERS = ("school", "jeugdteam", "jgz", "huisarts")
REGISTER = "brp"
MUNICIPALITIES = ("0363", "0599", "0344")
Kind = Literal["story", "reminder", "expired", "age_limit"]


@dataclass
class YouthPlan:
    index: int
    kind: Kind
    bsn: str | None
    surname: str | None
    sex: str | None
    birth_date: date
    municipality: str
    registrants: list[str]
    reported_at: dict[str, datetime]
    # A partner giving an earlier birth date for the same BSN (the index keeps the
    # earlier one, so the 23rd birthday never comes late).
    other_birth_date: dict[str, date] = field(default_factory=dict)
    claimants: list[str] = field(default_factory=list)
    informs: dict[str, Literal["informed", "deferred"]] = field(default_factory=dict)
    foreign: tuple[str, str, str] | None = None  # attacker, victim, message type
    already_registered: str | None = None
    duplicate_ref: str | None = None  # partner re-using its ref on a fresh youth
    duplicate_ref_bsn: str | None = None
    concurrent_copy: bool = False  # one registration published twice at once
    replay: bool = False  # an answered message published again much later
    withdraw: tuple[str, WithdrawReason] | None = None
    withdraw_again: bool = False
    late: str | None = None
    brp: Literal["moved", "deceased", "unknown"] | None = None
    moved_to: str | None = None
    unknown_bsn: str | None = None
    # One child of a family (contract §8): the register gives it this parent, as it
    # does the sibling's plan.
    parent_bsn: str | None = None

    @property
    def label(self) -> str:
        return f"Y{self.index:06d}"

    def ref(self, partner: str, n: int = 0) -> str:
        return f"{self.label}-{partner}" + (f"-{n}" if n else "")

    @property
    def meldingen(self) -> int:
        return len(self.registrants) + (1 if self.late else 0)


def surname_for(rng: random.Random, index: int) -> str:
    # "Qz" + the index in letters: unique per youth, unmistakable in a log scan.
    letters = ""
    n = index
    while True:
        letters += string.ascii_lowercase[n % 26]
        n //= 26
        if n == 0:
            break
    accent = rng.choice(["", "é", "ö", "ï"])
    return f"Qz{letters}{accent}{rng.choice(['', 'mans', 'berg'])}"


def variant_of(rng: random.Random, surname: str) -> str:
    """The same surname as another partner's system might write it."""
    return rng.choice(
        [surname, surname.upper(), surname.lower(), f"  {surname} ", surname.replace("Qz", "QZ")]
    )


@dataclass
class PlanSet:
    youths: list[YouthPlan]
    bsn_seeds_used: int
    # Pairs of children with a parent in common: each gets one melding, of two
    # different partners, and so exactly one family match.
    families: list[tuple[YouthPlan, YouthPlan]] = field(default_factory=list)

    @property
    def meldingen(self) -> int:
        return sum(y.meldingen for y in self.youths)


def make_plans(meldingen: int, rng: random.Random, now: datetime) -> PlanSet:
    """Stories until `meldingen` registrations (initial, late joiners and the
    retention cases) are planned."""
    today = amsterdam_date(now)
    youths: list[YouthPlan] = []
    seed = 1000
    total = 0
    special = max(3, meldingen // 200)  # per retention case kind
    timed: tuple[Kind, ...] = ("reminder", "expired", "age_limit")
    kinds: list[Kind] = [kind for kind in timed for _ in range(special)]

    def next_bsn() -> str:
        nonlocal seed
        seed += 1
        return example_bsn(seed)

    def reported(days_back: float) -> datetime:
        return now - timedelta(days=days_back, seconds=rng.randint(0, 3600))

    while total < meldingen:
        index = len(youths)
        if kinds and rng.random() < 0.05:
            kind = kinds.pop()
            partner = rng.choice(REPORTERS)
            if kind == "age_limit":
                birth = add_years(today, -23) - timedelta(days=rng.randint(1, 3))
                when = reported(6)
            elif kind == "expired":
                birth = add_years(today, -12)
                when = now - timedelta(days=2 * 366 + rng.randint(3, 30))
            else:
                birth = add_years(today, -10)
                when = reported(20 + rng.randint(0, 5))
            plan = YouthPlan(
                index,
                kind,
                next_bsn(),
                None,
                None,
                birth,
                rng.choice(MUNICIPALITIES),
                [partner],
                {partner: when},
            )
            youths.append(plan)
            total += 1
            continue
        k = rng.choices([1, 2, 3, 4], weights=[40, 35, 18, 7])[0]
        registrants = rng.sample(REPORTERS, k)
        with_bsn = rng.random() < 0.8
        birth = today - timedelta(days=rng.randint(400, 20 * 365))
        plan = YouthPlan(
            index=index,
            kind="story",
            bsn=next_bsn() if with_bsn else None,
            surname=None if with_bsn else surname_for(rng, index),
            sex=None if with_bsn else rng.choice(["M", "F", "X"]),
            birth_date=birth,
            municipality=rng.choice(MUNICIPALITIES),
            registrants=registrants,
            reported_at={p: reported(rng.uniform(0.05, 9)) for p in registrants},
        )
        if with_bsn and k >= 2 and rng.random() < 0.1:
            plan.other_birth_date[registrants[-1]] = birth - timedelta(days=rng.randint(1, 30))
        if k >= 2 and rng.random() < 0.5:
            plan.claimants = rng.sample(registrants, 2 if rng.random() < 0.35 else 1)
        elif k == 1 and rng.random() < 0.05:
            plan.claimants = list(registrants)  # a claim without a match: no_match
        for p in registrants:
            if rng.random() < 0.2:
                plan.informs[p] = rng.choice(["informed", "deferred"])
        if rng.random() < 0.03:
            victim = rng.choice(registrants)
            attacker = rng.choice([p for p in REPORTERS if p != victim])
            kind_of_attack = rng.choice(["melding.withdraw", "regie.claim", "melding.informed"])
            plan.foreign = (attacker, victim, kind_of_attack)
        if rng.random() < 0.02:
            plan.already_registered = rng.choice(registrants)
        if rng.random() < 0.01:
            plan.duplicate_ref = rng.choice(registrants)
            plan.duplicate_ref_bsn = next_bsn()
        plan.concurrent_copy = rng.random() < 0.02
        plan.replay = rng.random() < 0.02
        if rng.random() < 0.3:
            plan.withdraw = (rng.choice(registrants), rng.choice(["risk_ended", "unjustified"]))
            plan.withdraw_again = rng.random() < 0.1
            outsiders = [p for p in REPORTERS if p not in registrants]
            if outsiders and rng.random() < 0.4:
                plan.late = rng.choice(outsiders)
        roll = rng.random()
        if with_bsn and roll < 0.05:
            plan.brp = "moved"
            plan.moved_to = rng.choice([m for m in MUNICIPALITIES if m != plan.municipality])
        elif with_bsn and roll < 0.08:
            plan.brp = "deceased"
        elif roll < 0.09:
            plan.brp = "unknown"
            plan.unknown_bsn = next_bsn()
        youths.append(plan)
        total += plan.meldingen
    families = []
    for _ in range(max(3, meldingen // 100)):
        parent = next_bsn()
        pair = []
        for partner in rng.sample(REPORTERS, 2):
            plan = YouthPlan(
                index=len(youths),
                kind="story",
                bsn=next_bsn(),
                surname=None,
                sex=None,
                birth_date=today - timedelta(days=rng.randint(400, 17 * 365)),
                municipality=rng.choice(MUNICIPALITIES),
                registrants=[partner],
                reported_at={partner: reported(rng.uniform(0.05, 9))},
                parent_bsn=parent,
            )
            # Somewhere among the others, so the siblings' stories run at moments of
            # their own.
            youths.insert(rng.randint(0, len(youths)), plan)
            pair.append(plan)
        families.append((pair[0], pair[1]))
    return PlanSet(youths, seed, families)
