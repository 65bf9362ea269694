"""A melding with its organisation: who takes part in a match, and how others see it.

Free of I/O: the organisation and sector come from the region config.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contract.outbound import UNKNOWN_SECTOR
from shared.emails import Counterpart, Lead, Member, Professional, Reporter
from shared.index.domain import StoredMelding
from shared.region.model import RegionConfig


@dataclass(frozen=True)
class Participant:
    melding: StoredMelding
    organisation: str
    sector: str
    # False for a retired partner and for one the region config no longer names: its
    # melding is still shown to others, but it is sent nothing.
    receives_notices: bool = True

    def contact(self) -> Reporter:
        r = self.melding.reporter
        return Reporter(name=r.name, email=r.email, phone=r.phone)

    def as_professional(self) -> Professional:
        """As the other side of a family match sees it (no melding_ref)."""
        return Professional(
            partner=self.melding.partner_id,
            organisation=self.organisation,
            sector=self.sector,
            reporter=self.contact(),
            registered_at=self.melding.registered_at,
        )

    def as_counterpart(self) -> Counterpart:
        """As another reporter in the match sees it."""
        return Counterpart(
            partner=self.melding.partner_id,
            organisation=self.organisation,
            sector=self.sector,
            reporter=self.contact(),
            registered_at=self.melding.registered_at,
            archived=not self.melding.active,
        )

    def as_member(self) -> Member:
        """As the match coordinator sees it: with its own melding_ref."""
        return Member(
            partner=self.melding.partner_id,
            organisation=self.organisation,
            sector=self.sector,
            reporter=self.contact(),
            registered_at=self.melding.registered_at,
            archived=not self.melding.active,
            melding_ref=self.melding.melding_ref,
        )

    def as_lead(self) -> Lead:
        return Lead(
            partner=self.melding.partner_id,
            organisation=self.organisation,
            reporter=self.contact(),
        )


def participant(region: RegionConfig, melding: StoredMelding) -> Participant:
    partner = region.partners_by_id.get(melding.partner_id)
    if partner is None:
        # Dropped from the config by an older version (`region apply` now refuses to
        # drop a partner with meldingen): still shown, by its id, and sent nothing.
        return Participant(melding, melding.partner_id, UNKNOWN_SECTOR, receives_notices=False)
    return Participant(melding, partner.name, partner.sector.value, not partner.retired)
