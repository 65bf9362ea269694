"""What the municipal match coordinator sees of the index: the matches of their
municipalities, with the organisations in them, and the follow-up they recorded.

Read from the index's own tables through the views of migration 0009 (never the
youth's identity hash or birth date): what the index purges is gone here at once.
Every query is scoped to the coordinator's municipality codes: a match elsewhere is
simply not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.dates import amsterdam_date
from shared.db.pool import Conn
from shared.region.model import PORTAL_ID, RegionConfig

# The most recent ended matches shown; older ones stay in the index until purged.
ENDED_SHOWN = 100


@dataclass(frozen=True)
class Member:
    melding_id: int
    partner_id: str
    organisation: str
    sector: str
    active: bool
    reporter_name: str
    reporter_email: str
    reporter_phone: str | None


@dataclass(frozen=True)
class Match:
    match_id: uuid.UUID
    municipality: str
    formed_at: datetime
    ended_at: datetime | None
    lead_partner: str | None
    lead_needed_since: datetime | None
    escalated: bool
    moved_in_at: datetime | None
    followed_up_at: datetime | None
    members: tuple[Member, ...]

    @property
    def open(self) -> bool:
        return self.ended_at is None

    @property
    def lead(self) -> Member | None:
        return next((m for m in self.members if m.partner_id == self.lead_partner), None)

    @property
    def active_members(self) -> list[Member]:
        return [m for m in self.members if m.active]

    def days_without_lead(self, today: date) -> int | None:
        """Days since the match needed a lead; None when it has one or has ended."""
        if not self.open or self.lead_partner is not None:
            return None
        since = self.lead_needed_since or self.formed_at
        return max((today - amsterdam_date(since)).days, 0)

    def needs_followup(self, today: date, after_days: int) -> bool:
        """Open, not followed up, and formed at least `after_days` days ago."""
        return (
            self.open
            and self.followed_up_at is None
            and (today - amsterdam_date(self.formed_at)).days >= after_days
        )


def order(matches: Sequence[Match]) -> list[Match]:
    """Escalated open matches first, then the other open ones, then the ended ones;
    the oldest first within the open groups, the latest end first among the ended."""
    open_ = sorted((m for m in matches if m.open), key=lambda m: (not m.escalated, m.formed_at))
    ended = sorted(
        (m for m in matches if not m.open),
        key=lambda m: m.ended_at or m.formed_at,
        reverse=True,
    )
    return [*open_, *ended]


_MATCH_SELECT = """
    SELECT c.match_id, c.municipality, c.formed_at, c.ended_at, c.lead_needed_since,
           c.escalated_at IS NOT NULL AS escalated, lead.partner_id AS lead_partner,
           a.moved_at AS moved_in_at, f.recorded_at AS followed_up_at
    FROM coordinator_match c
    LEFT JOIN coordinator_member lead
           ON lead.match_id = c.match_id AND lead.melding_id = c.lead_melding_id
    LEFT JOIN coordinator_match_arrival a
           ON a.match_id = c.match_id AND a.municipality = c.municipality
    LEFT JOIN coordinator_followup f ON f.match_id = c.match_id
    WHERE c.municipality = ANY($1::text[])"""


async def matches(conn: Conn, region: RegionConfig, codes: Sequence[str]) -> list[Match]:
    """The open matches and the latest ended ones of these municipalities, in order."""
    rows = await conn.fetch(
        f"""{_MATCH_SELECT} AND c.ended_at IS NULL
            UNION ALL
            (SELECT * FROM ({_MATCH_SELECT} AND c.ended_at IS NOT NULL) ended
             ORDER BY ended_at DESC LIMIT $2)""",  # noqa: S608 - constant SQL parts
        list(codes),
        ENDED_SHOWN,
    )
    return order(await _with_members(conn, region, rows))


async def match(
    conn: Conn, region: RegionConfig, codes: Sequence[str], match_id: uuid.UUID
) -> Match | None:
    """One match of these municipalities; None for one elsewhere or unknown."""
    rows = await conn.fetch(
        f"{_MATCH_SELECT} AND c.match_id = $2",
        list(codes),
        match_id,
    )
    found = await _with_members(conn, region, rows)
    return found[0] if found else None


async def _with_members(conn: Conn, region: RegionConfig, rows: Sequence[Any]) -> list[Match]:
    if not rows:
        return []
    member_rows = await conn.fetch(
        """SELECT match_id, melding_id, partner_id, state, reporter_name, reporter_email,
                  reporter_phone
           FROM coordinator_member WHERE match_id = ANY($1::uuid[])
           ORDER BY registered_at, melding_id""",
        [r["match_id"] for r in rows],
    )
    by_match: dict[uuid.UUID, list[Member]] = {}
    partners = region.partners_by_id
    for r in member_rows:
        partner = partners.get(r["partner_id"])
        by_match.setdefault(r["match_id"], []).append(
            Member(
                melding_id=r["melding_id"],
                partner_id=r["partner_id"],
                organisation=partner.name if partner else r["partner_id"],
                sector=partner.sector.value if partner else "",
                active=r["state"] == "active",
                reporter_name=r["reporter_name"],
                reporter_email=r["reporter_email"],
                reporter_phone=r["reporter_phone"],
            )
        )
    return [
        Match(
            match_id=r["match_id"],
            municipality=r["municipality"],
            formed_at=r["formed_at"],
            ended_at=r["ended_at"],
            lead_partner=r["lead_partner"],
            lead_needed_since=r["lead_needed_since"],
            escalated=r["escalated"],
            moved_in_at=r["moved_in_at"],
            followed_up_at=r["followed_up_at"],
            members=tuple(by_match.get(r["match_id"], ())),
        )
        for r in rows
    ]


async def record_followup(conn: Conn, match_id: uuid.UUID, by: uuid.UUID, at: datetime) -> bool:
    """Record "afgestemd" once; False when it was recorded before."""
    done = await conn.fetchval(
        """INSERT INTO coordinator_followup (match_id, recorded_by, recorded_at)
           VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true""",
        match_id,
        by,
        at,
    )
    return bool(done)


@dataclass(frozen=True)
class Assignment:
    """The latest regie.assign the portal sent on a match, and the index's answer."""

    partner: str
    status: str | None  # None: no answer yet
    errors: list[dict[str, Any]]


async def assignments(conn: Conn, match_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Assignment]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (match_id) match_id, partner, receipt_status, receipt_errors
           FROM (SELECT b ->> 'match_id' AS match_id, b ->> 'partner' AS partner,
                        receipt_status, receipt_errors, created_at
                 FROM (SELECT convert_from(body, 'UTF8')::jsonb AS b, receipt_status,
                              receipt_errors, created_at
                       FROM portal_message
                       WHERE routing_key = 'regie.assign' AND coordinator IS NOT NULL) raw
                ) sent
           WHERE match_id = ANY($1::text[])
           ORDER BY match_id, created_at DESC""",
        [str(m) for m in match_ids],
    )
    return {
        uuid.UUID(r["match_id"]): Assignment(
            r["partner"], r["receipt_status"], list(r["receipt_errors"] or [])
        )
        for r in rows
    }


async def forget_gone_matches(conn: Conn) -> int:
    """Forget the answered assignments (and their receipts in the portal's mailbox) of
    matches the index no longer has: they go with the youth. Returns how many."""
    gone = await conn.fetch(
        """DELETE FROM portal_message p
           WHERE p.coordinator IS NOT NULL AND p.answered_at IS NOT NULL
             AND NOT EXISTS (
                 SELECT 1 FROM match_group g
                 WHERE g.id::text = convert_from(p.body, 'UTF8')::jsonb ->> 'match_id')
           RETURNING p.message_id""",
    )
    if gone:
        await conn.execute(
            """DELETE FROM portal_notice
               WHERE partner_id = $1 AND body ->> 'in_reply_to' = ANY($2::text[])""",
            PORTAL_ID,
            [str(r["message_id"]) for r in gone],
        )
    return len(gone)
