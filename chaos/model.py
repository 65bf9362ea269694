"""A pure-Python model of one youth in the index: what the system must answer, whom it
must tell, and what must be stored afterwards.

The run drives every youth through its steps one after another (a step starts when
every receipt of the previous one is in), so the model can follow exactly; only
inside a step do messages race (concurrent registrations of several partners,
concurrent lead claims), and there the rules say the outcome does not depend on the
order: every pair of registrations is a match either way, and exactly one claim wins.

No broker, no database, no clock: `tests/unit`-style checks run in microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

State = Literal["active", "archived", "gone"]
WithdrawReason = Literal["risk_ended", "unjustified"]
ARCHIVING = frozenset({"risk_ended", "expired"})


@dataclass(frozen=True, order=True)
class NoticeKey:
    """One effect a partner must see exactly once (a second copy with another
    message_id is a duplicated effect).

    kind: match.notice (detail = (counterpart partner, counterpart archived)),
    regie.notice (detail = lead partner or ""), melding.ended (detail = reason),
    youth.moved (detail = municipality), inform.reminder (detail = "").
    """

    kind: str
    partner: str
    melding_ref: str
    detail: tuple[str, bool] | str


@dataclass
class MeldingState:
    partner: str
    ref: str
    state: State = "active"
    end_reason: str | None = None
    archive_signalled: bool = False
    informed: tuple[str, ...] | None = None
    informed_on: date | None = None
    deferred_reason: str | None = None


@dataclass
class YouthModel:
    """One youth as the index must see it."""

    label: str
    bsn: str | None
    birth_date: date
    municipality: str
    meldingen: dict[str, MeldingState] = field(default_factory=dict)
    # Every ref each partner ever used on this youth (refs are never reused).
    lead: str | None = None
    group_open: bool = False
    notices: list[NoticeKey] = field(default_factory=list)

    # --- queries --------------------------------------------------------------------

    @property
    def active(self) -> list[MeldingState]:
        return [m for m in self.meldingen.values() if m.state == "active"]

    @property
    def stored(self) -> list[MeldingState]:
        return [m for m in self.meldingen.values() if m.state != "gone"]

    @property
    def exists(self) -> bool:
        """Anything at all stored on the youth (else its row is gone too)."""
        return bool(self.stored)

    def own(self, partner: str, ref: str) -> MeldingState | None:
        m = self.meldingen.get(partner)
        return m if m is not None and m.ref == ref else None

    # --- steps ----------------------------------------------------------------------

    def register_together(
        self, entries: Iterable[tuple[str, str]], birth_dates: Iterable[date] = ()
    ) -> list[str]:
        """Several partners register at the same moment (none has a melding on the
        youth yet, and nothing is archived). Returns the expected receipt of each.

        Whatever order the matcher replicas take them in, every pair ends up told
        about each other exactly once; a live group forms when there are two or more.
        """
        entries = list(entries)
        assert not self.meldingen, "register_together starts a youth"
        for partner, ref in entries:
            self.meldingen[partner] = MeldingState(partner, ref)
        for d in birth_dates:
            self.birth_date = min(self.birth_date, d)
        for p, p_ref in entries:
            for q, _ in entries:
                if p != q:
                    self.notices.append(NoticeKey("match.notice", p, p_ref, (q, False)))
        if len(entries) >= 2:
            self.group_open = True
        return ["accepted" for _ in entries]

    def register_late(self, partner: str, ref: str) -> str:
        """A partner with no melding on the youth registers after earlier steps."""
        own = self.meldingen.get(partner)
        if own is not None and own.state == "active":
            return "rejected:already_registered"
        counterparts = [m for m in self.active if m.partner != partner]
        active_partners = {m.partner for m in counterparts}
        unsignalled = [
            m
            for m in self.meldingen.values()
            if m.state == "archived" and not m.archive_signalled and m.partner != partner
        ]
        archived_named = [m for m in unsignalled if m.partner not in active_partners]
        for m in unsignalled:
            m.archive_signalled = True
        if own is not None and own.state == "archived":
            # The partner's own archived melding is not a counterpart; it stays as is.
            raise NotImplementedError("the run never re-registers a withdrawn partner")
        self.meldingen[partner] = MeldingState(partner, ref)
        named = [*counterparts, *archived_named]
        for c in named:
            archived = c.state == "archived"
            self.notices.append(NoticeKey("match.notice", partner, ref, (c.partner, archived)))
            self.notices.append(NoticeKey("match.notice", c.partner, c.ref, (partner, False)))
        if counterparts and not self.group_open:
            self.group_open = True
            self.lead = None
        return "accepted"

    def claim_outcome(self, partner: str, ref: str) -> str:
        """The receipt a single claim gets now (without applying it)."""
        own = self.own(partner, ref)
        if own is None or own.state == "gone":
            return "rejected:unknown_melding"
        if own.state != "active":
            return "rejected:not_active"
        if not self.group_open:
            return "rejected:no_match"
        if self.lead == partner:
            return "accepted"
        if self.lead is not None:
            return "rejected:regie_taken"
        return "accepted"

    def claims_together(self, claims: list[tuple[str, str]]) -> tuple[str, set[str]]:
        """Claims sent at the same moment: ('one-wins', claimants that may win) when a
        lead is free, else ('each', {}) and every claim is judged on its own."""
        possible = {p for p, r in claims if self.claim_outcome(p, r) == "accepted"}
        if self.lead is None and len(possible) >= 1:
            return "one-wins", possible
        return "each", set()

    def set_lead(self, partner: str) -> None:
        """A claim by `partner` was accepted: every active member hears it."""
        if self.lead == partner:
            return
        self.lead = partner
        for m in self.active:
            self.notices.append(NoticeKey("regie.notice", m.partner, m.ref, partner))

    def inform(
        self,
        partner: str,
        ref: str,
        *,
        informed: tuple[str, ...] | None = None,
        informed_on: date | None = None,
        deferred_reason: str | None = None,
    ) -> str:
        own = self.own(partner, ref)
        if own is None or own.state == "gone":
            return "rejected:unknown_melding"
        if own.state != "active":
            return "rejected:not_active"
        own.informed, own.informed_on, own.deferred_reason = informed, informed_on, deferred_reason
        return "accepted"

    def withdraw(self, partner: str, ref: str, reason: WithdrawReason) -> str:
        own = self.own(partner, ref)
        if own is None or own.state == "gone":
            return "rejected:unknown_melding"
        if own.state != "active":
            return "rejected:not_active"
        self._end(own, reason)
        return "accepted"

    def _end(self, melding: MeldingState, reason: str) -> None:
        was_lead = self.lead == melding.partner
        if reason in ARCHIVING:
            melding.state = "archived"
            melding.end_reason = reason
            melding.archive_signalled = False
        else:
            melding.state = "gone"
        melding.informed = melding.informed_on = melding.deferred_reason = None
        if not self.group_open:
            return
        remaining = self.active
        if len(remaining) < 2:
            self.group_open = False
            self.lead = None
            # Contract 1.1 section 11: who is left in an ended group is told.
            for m in remaining:
                self.notices.append(NoticeKey("match.ended", m.partner, m.ref, ""))
        elif was_lead:
            self.lead = None
            for m in remaining:
                self.notices.append(NoticeKey("regie.notice", m.partner, m.ref, ""))

    def end_by_system(self, partner: str, reason: Literal["expired", "age_limit"]) -> None:
        """The retention sweep ends a melding (expiry archives, the 23rd birthday
        purges everything on the youth)."""
        own = self.meldingen[partner]
        if own.state == "active":
            self.notices.append(NoticeKey("melding.ended", partner, own.ref, reason))
        if reason == "age_limit":
            for m in self.meldingen.values():
                m.state = "gone"
            self.group_open, self.lead = False, None
        else:
            self._end(own, reason)

    def remind(self, partner: str) -> None:
        own = self.meldingen[partner]
        self.notices.append(NoticeKey("inform.reminder", partner, own.ref, ""))

    def moved(self, municipality: str) -> str:
        if not self.exists:
            return "rejected:unknown_person"
        self.municipality = municipality
        for m in self.active:
            self.notices.append(NoticeKey("youth.moved", m.partner, m.ref, municipality))
        return "accepted"

    def died(self) -> str:
        if not self.exists:
            return "rejected:unknown_person"
        for m in self.active:
            self.notices.append(NoticeKey("melding.ended", m.partner, m.ref, "deceased"))
        for m in self.meldingen.values():
            m.state = "gone"
        self.group_open, self.lead = False, None
        return "accepted"


def receipt_outcome(status: str, codes: Iterable[str]) -> str:
    """A receipt in the model's notation: 'accepted', 'rejected:<code>[,<code>]'."""
    if status != "rejected":
        return status
    return "rejected:" + ",".join(sorted(set(codes)))
