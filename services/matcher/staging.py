"""Registrations handled as a set: read up front, written at the end.

A run of registrations in one transaction (a bulk load brings dozens at once) would
otherwise cost three to six statements each. Instead a `RegistrationStage` locks or
creates all their youths and reads those youths' meldingen and open match groups in
three statements, lets each registration decide on that state in order (updating it
as it goes, so a second melding on a youth in the same run sees the first), and then
writes what they decided in a handful of statements. The domain decisions are the
same as one by one; only the round trips are shared.

Only registrations may run between `prepare` and `flush`: any other command would
change what the stage has read.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from shared.db.pool import Conn
from shared.index import repository as repo
from shared.index.domain import Contact, StoredMelding


@dataclass
class StagedYouth:
    """One youth as the run's registrations see it, their own effects included."""

    identity: bytes
    youth: repo.Youth
    meldingen: list[StoredMelding]
    group: repo.Group | None
    # Created by this run and holding no melding yet (its first registration may have
    # been rejected): the next registration's facts replace the row's outright.
    blank: bool


@dataclass
class RegistrationStage:
    youths: dict[bytes, StagedYouth]
    registered_at: datetime  # the transaction's timestamp, as the column's default
    _free_ids: list[int]
    _meldingen: list[repo.NewMelding] = field(default_factory=list)
    _groups: dict[uuid.UUID, repo.NewGroup] = field(default_factory=dict)
    _leads: dict[uuid.UUID, int] = field(default_factory=dict)
    _members: list[tuple[uuid.UUID, int]] = field(default_factory=list)
    _archive_signalled: list[int] = field(default_factory=list)
    _changed_youths: dict[int, repo.Youth] = field(default_factory=dict)
    _maybe_empty: set[int] = field(default_factory=set)

    @classmethod
    async def prepare(cls, conn: Conn, youths: Sequence[repo.NewYouth]) -> RegistrationStage:
        locked = await repo.lock_or_create_youths(conn, youths)
        ids = [youth.id for youth, _ in locked.values()]
        meldingen = await repo.meldingen_of_youths(conn, ids)
        # Only a youth with meldingen can have a match group.
        groups = await repo.open_groups(conn, list(meldingen)) if meldingen else {}
        registered_at, free_ids = await repo.reserve_melding_ids(conn, len(youths))
        staged = {
            identity: StagedYouth(
                identity,
                youth,
                meldingen.get(youth.id, []),
                groups.get(youth.id),
                blank=created,
            )
            for identity, (youth, created) in locked.items()
        }
        return cls(staged, registered_at, free_ids)

    def add_melding(
        self,
        staged: StagedYouth,
        *,
        partner_id: str,
        melding_ref: str,
        reported_at: datetime,
        reporter: Contact,
        expires_on: date,
        inform_targets: Sequence[str],
    ) -> StoredMelding:
        melding = StoredMelding(
            id=self._free_ids.pop(0),
            partner_id=partner_id,
            melding_ref=melding_ref,
            active=True,
            registered_at=self.registered_at,
            reporter=reporter,
        )
        self._meldingen.append(
            repo.NewMelding(melding, staged.youth.id, reported_at, expires_on, inform_targets)
        )
        staged.meldingen.append(melding)
        staged.blank = False
        return melding

    def note_facts(self, staged: StagedYouth, *, birth_date: date, municipality: str) -> None:
        """The youth lives where the newest melding says. Of two birth dates given for
        one BSN the earlier is kept, so the 23rd-birthday purge never comes late."""
        youth = staged.youth
        if staged.blank:
            updated = dataclasses.replace(youth, birth_date=birth_date, municipality=municipality)
        else:
            updated = dataclasses.replace(
                youth, birth_date=min(youth.birth_date, birth_date), municipality=municipality
            )
        if updated != youth:
            staged.youth = updated
            self._changed_youths[youth.id] = updated

    def create_group(self, staged: StagedYouth, *, live: bool, lead: int | None) -> uuid.UUID:
        group = repo.NewGroup(uuid.uuid4(), staged.youth.id, live, lead)
        self._groups[group.id] = group
        if live:  # an ended group is no youth's open group
            staged.group = repo.Group(group.id, lead)
        return group.id

    def set_lead(self, staged: StagedYouth, lead: int) -> None:
        """Give the youth's open group, which has none, its lead."""
        assert staged.group is not None and staged.group.lead_melding_id is None
        match_id = staged.group.id
        staged.group = repo.Group(match_id, lead)
        if match_id in self._groups:  # formed in this run: it is inserted with its lead
            self._groups[match_id] = dataclasses.replace(
                self._groups[match_id], lead_melding_id=lead
            )
        else:
            self._leads[match_id] = lead

    def add_members(self, match_id: uuid.UUID, melding_ids: Iterable[int]) -> None:
        self._members.extend((match_id, melding_id) for melding_id in melding_ids)

    def mark_archive_signalled(self, staged: StagedYouth, melding_ids: Sequence[int]) -> None:
        used = set(melding_ids)
        self._archive_signalled.extend(used)
        staged.meldingen = [
            dataclasses.replace(m, archive_signalled=True) if m.id in used else m
            for m in staged.meldingen
        ]

    def forget_if_empty(self, staged: StagedYouth) -> None:
        """A youth row this run created for a rejected melding must not stay behind."""
        self._maybe_empty.add(staged.youth.id)

    async def flush(self, conn: Conn, now: datetime) -> None:
        """Write what the run decided (groups formed, leads set at `now`); the order
        follows the foreign keys."""
        await repo.insert_meldingen(conn, self._meldingen)
        await repo.update_youths(conn, list(self._changed_youths.values()))
        await repo.create_groups(conn, list(self._groups.values()), now)
        for match_id, lead in self._leads.items():
            await repo.set_lead(conn, match_id, lead, now)
        await repo.add_members(conn, self._members)
        await repo.mark_archive_signalled(conn, self._archive_signalled)
        await repo.delete_youths_if_empty(conn, sorted(self._maybe_empty))
