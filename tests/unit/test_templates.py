"""The e-mails: Dutch, for professionals, each naming the recipient's own reference and
the counterparts' contact data, with a stable Message-ID and nothing on the youth."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from services.notifier.mime import render, render_with_stdlib
from services.notifier.templates import SECTOR_LABELS, compose
from shared.announce import CoordinatorTemplate, match_event, regie_event
from shared.dates import InformTarget
from shared.emails import InformReminder, YouthMovedCoordinator
from shared.envelopes import EmailJob, NotifyEvent
from shared.index.domain import Contact, StoredMelding
from shared.index.participants import Participant
from shared.region.model import Municipality

MATCH_ID = uuid.UUID("5c0f3c52-0d7e-4a8b-9a53-7c6a1f0e2b11")
AMSTERDAM = Municipality(code="0363", name="Amsterdam", coordinator_email="regie@amsterdam.example")


def person(
    id: int, partner: str, org: str, sector: str, *, active: bool = True, phone: str | None = None
) -> Participant:
    melding = StoredMelding(
        id=id,
        partner_id=partner,
        melding_ref=f"REF-{partner.upper()}-{id}",
        active=active,
        registered_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        reporter=Contact(f"Contact {partner}", f"contact@{partner}.example", phone),
    )
    return Participant(melding, org, sector)


SCHOOL = person(1, "school", "Basisschool De Regenboog", "onderwijs", phone="+31201111111")
TEAM = person(2, "jeugdteam", "Jeugdteam Noord", "jeugdhulp")
GGD = person(3, "jgz", "GGD Jeugdgezondheidszorg", "jgz", active=False)


def three_way_match(lead: Participant | None = None) -> NotifyEvent:
    return match_event(
        match_id=MATCH_ID,
        newcomer=TEAM,
        counterparts=[SCHOOL, GGD],
        lead=lead,
        municipality=AMSTERDAM,
    )


def rendered(job: EmailJob) -> tuple[EmailMessage, str]:
    message = message_from_bytes(
        render(job, "verwijsindex@regio.example").data, policy=policy.default
    )
    assert isinstance(message, EmailMessage)
    return message, message.get_content()


def test_every_reporter_and_the_coordinator_get_one_mail() -> None:
    event = three_way_match()
    assert sorted(job.to for job in event.emails) == [
        "contact@jeugdteam.example",
        "contact@jgz.example",
        "contact@school.example",
        "regie@amsterdam.example",
    ]
    assert len({job.message_id for job in event.emails}) == 4


def test_reporter_mail_names_own_ref_and_everyone_elses_contact_data() -> None:
    event = three_way_match()
    job = next(j for j in event.emails if j.to == "contact@school.example")
    message, text = rendered(job)
    assert message["Subject"] == "Match in de Verwijsindex voor uw melding REF-SCHOOL-1"
    assert "uw melding met kenmerk REF-SCHOOL-1 (Basisschool De Regenboog)" in text
    assert "hebben ook andere organisaties een melding gedaan" in text
    assert (
        "Neem contact met elkaar op om uw hulp af te stemmen en af te spreken wie de regie" in text
    )
    for other in (TEAM, GGD):
        assert other.organisation in text
        assert f"Contactpersoon: {other.melding.reporter.name}" in text
        assert f"E-mail: {other.melding.reporter.email}" in text
    assert "(jeugdgezondheidszorg)" in text  # sector shown in words, not as a code
    assert "deze melding is eerder afgesloten en staat in het archief" in text
    assert "Regie: nog geen organisatie heeft de regie genomen." in text
    assert f"Matchnummer: {MATCH_ID}" in text
    # Its own contact data, and the others' references, are not in it.
    assert "contact@school.example" not in text
    assert "REF-JEUGDTEAM-2" not in text and "REF-JGZ-3" not in text


def test_archived_reporter_is_told_why_it_hears_once() -> None:
    job = next(j for j in three_way_match().emails if j.to == "contact@jgz.example")
    _, text = rendered(job)
    assert "Uw melding is eerder afgesloten en staat in het archief" in text
    assert "eenmalig" in text


def test_single_counterpart_is_in_the_singular_and_phone_is_listed() -> None:
    event = match_event(
        match_id=MATCH_ID, newcomer=TEAM, counterparts=[SCHOOL], lead=None, municipality=AMSTERDAM
    )
    job = next(j for j in event.emails if j.to == "contact@jeugdteam.example")
    _, text = rendered(job)
    assert "heeft ook een andere organisatie een melding gedaan" in text
    assert "Betrokken professional:\n" in text
    assert "Telefoon: +31201111111" in text


def mail_to(event: NotifyEvent, address: str) -> str:
    return rendered(next(j for j in event.emails if j.to == address))[1]


def test_with_a_lead_the_reporters_are_told_who_has_it_not_asked_to_agree() -> None:
    with_lead = three_way_match(lead=TEAM)
    text = mail_to(with_lead, "contact@school.example")
    assert "Jeugdteam Noord heeft de regie in deze match." in text
    assert "Neem contact met elkaar op om uw hulp af te stemmen." in text
    assert "Regie: Jeugdteam Noord (contactpersoon Contact jeugdteam," in text
    # The lead's own reporter hears that its organisation has it.
    text = mail_to(with_lead, "contact@jeugdteam.example")
    assert "Uw organisatie heeft de regie in deze match." in text
    assert "Neem contact op met de andere professionals om de hulp af te stemmen." in text
    # An archived melding cannot take the lead: it is not asked to, with or without one.
    for event in (with_lead, three_way_match()):
        text = mail_to(event, "contact@jgz.example")
        assert "Neem zo nodig contact op met de andere professionals." in text
    for address in ("contact@school.example", "contact@jeugdteam.example", "contact@jgz.example"):
        assert "wie de regie neemt" not in mail_to(with_lead, address)
    assert "wie de regie neemt" not in mail_to(with_lead, "regie@amsterdam.example")
    assert "en wie de regie neemt?" in mail_to(three_way_match(), "regie@amsterdam.example")


def test_coordinator_mail_lists_every_participant_with_their_reference() -> None:
    job = next(j for j in three_way_match().emails if j.to == "regie@amsterdam.example")
    message, text = rendered(job)
    assert message["Subject"] == "Nieuwe match in de Verwijsindex (Amsterdam)"
    assert text.startswith("Geachte matchregisseur,")
    assert "jeugdige die in Amsterdam woont" in text
    for p in (SCHOOL, TEAM, GGD):
        assert f"Kenmerk van hun melding: {p.melding.melding_ref}" in text
        assert p.melding.reporter.email in text


def test_lead_and_escalation_mails_to_the_coordinator() -> None:
    set_event = regie_event(
        match_id=MATCH_ID,
        members=[SCHOOL, TEAM],
        lead=TEAM,
        escalated=False,
        municipality=AMSTERDAM,
        coordinator_template="lead_coordinator",
    )
    [job] = set_event.emails
    message, text = rendered(job)
    assert job.to == "regie@amsterdam.example"
    assert message["Subject"] == f"Regie vastgelegd voor match {MATCH_ID}"
    assert "heeft Jeugdteam Noord de regie" in text
    assert "Contactpersoon: Contact jeugdteam, contact@jeugdteam.example" in text

    escalation = regie_event(
        match_id=MATCH_ID,
        members=[SCHOOL, TEAM],
        lead=None,
        escalated=True,
        municipality=AMSTERDAM,
        coordinator_template="regie_escalation",
    )
    [job] = escalation.emails
    message, text = rendered(job)
    assert message["Subject"] == f"Geen regie in match {MATCH_ID}: actie gevraagd"
    assert "binnen de afgesproken termijn geen organisatie de regie genomen" in text
    assert "contact@school.example" in text and "contact@jeugdteam.example" in text
    assert all(n.body["escalated"] is True for n in escalation.notices)


def test_a_lead_the_coordinator_assigned_is_mailed_to_its_reporter_too() -> None:
    event = regie_event(
        match_id=MATCH_ID,
        members=[SCHOOL, TEAM, GGD],
        lead=TEAM,
        escalated=False,
        municipality=AMSTERDAM,
        coordinator_template="lead_coordinator",
        assigned=True,
    )
    assert [(j.template, j.to) for j in event.emails] == [
        ("lead_coordinator", "regie@amsterdam.example"),
        ("lead_assigned", "contact@jeugdteam.example"),
    ]
    message, text = rendered(event.emails[1])
    assert message["Subject"] == f"U heeft de regie gekregen in match {MATCH_ID}"
    assert "De matchregisseur van Amsterdam heeft de regie" in text
    assert "(Jeugdteam Noord), voor uw melding met kenmerk REF-JEUGDTEAM-2" in text
    assert "contact@school.example" in text and "+31201111111" in text
    assert "contact@jeugdteam.example" not in text  # not itself among the others
    # Another partner's own ref is not passed on, and nothing on the youth at all.
    assert "REF-SCHOOL-1" not in text
    assert not {"bsn", "birth_date", "surname"} & set(event.emails[1].data.model_dump())
    # A lead that was claimed or set by the region hears it only by regie.notice.
    unassigned = regie_event(
        match_id=MATCH_ID,
        members=[SCHOOL, TEAM],
        lead=TEAM,
        escalated=False,
        municipality=AMSTERDAM,
        coordinator_template="lead_coordinator",
    )
    assert [j.template for j in unassigned.emails] == ["lead_coordinator"]


def test_message_id_is_stable_and_derived_from_the_job() -> None:
    job = three_way_match().emails[0]
    first, _ = rendered(job)
    again, _ = rendered(EmailJob.model_validate_json(job.model_dump_json()))
    assert first["Message-ID"] == again["Message-ID"] == f"<{job.message_id}@verwijsindex.invalid>"
    assert first["To"] == job.to
    assert first["From"] == "verwijsindex@regio.example"


def test_a_long_subject_survives_writing_and_reading_back() -> None:
    [job] = regie_event(
        match_id=MATCH_ID,
        members=[SCHOOL, TEAM],
        lead=None,
        escalated=True,
        municipality=AMSTERDAM,
        coordinator_template="regie_escalation",
    ).emails
    raw = render(job, "verwijsindex@regio.example").data
    assert f"\nSubject: Geen regie in match {MATCH_ID}: actie gevraagd\n".encode() in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == f"Geen regie in match {MATCH_ID}: actie gevraagd"
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(len(line) for line in raw.splitlines()) <= 998
    assert "binnen de afgesproken termijn geen organisatie" in parsed.get_content()


@pytest.mark.parametrize(
    ("inform", "phrase"),
    [
        (["parents"], "de ouders/wettelijk vertegenwoordigers over de melding is geïnformeerd"),
        (["youth", "parents"], "de jeugdige en de ouders/wettelijk vertegenwoordigers"),
        (["youth"], "de jeugdige over de melding is geïnformeerd"),
    ],
)
def test_inform_reminder(inform: list[InformTarget], phrase: str) -> None:
    subject, text = compose(InformReminder(melding_ref="R-7", inform=inform))
    assert subject == "Herinnering: informeer over melding R-7"
    assert phrase in text
    assert "melding.informed" in text


def test_moved_mail_to_the_new_municipality() -> None:
    subject, text = compose(
        YouthMovedCoordinator(municipality="Rotterdam", participants=[SCHOOL.as_member()])
    )
    assert "Rotterdam" in subject
    assert "verhuisd naar Rotterdam" in text
    assert "contact@school.example" in text


def test_every_sector_has_a_dutch_label_and_every_template_a_footer() -> None:
    from shared.region.model import Sector

    assert set(SECTOR_LABELS) == {s.value for s in Sector}
    for job in three_way_match().emails:
        _, text = rendered(job)
        assert "De Verwijsindex bewaart geen\ninhoud over de zorg" in text
        assert "Geachte" in text


def every_kind_of_job() -> list[EmailJob]:
    jobs = [*three_way_match().emails, *three_way_match(lead=SCHOOL).emails]
    kinds: list[tuple[Participant | None, CoordinatorTemplate]] = [
        (TEAM, "lead_coordinator"),
        (None, "regie_escalation"),
    ]
    for lead, template in kinds:
        jobs += regie_event(
            match_id=MATCH_ID,
            members=[SCHOOL, TEAM],
            lead=lead,
            escalated=lead is None,
            municipality=AMSTERDAM,
            coordinator_template=template,
            assigned=lead is not None,
        ).emails
    return jobs


@pytest.mark.parametrize("job", every_kind_of_job(), ids=lambda job: job.template)
def test_the_direct_renderer_writes_what_the_standard_library_writes(job: EmailJob) -> None:
    date = "Sat, 28 Nov 2026 12:00:00 -0000"
    sender = "verwijsindex@regio.example"
    fast = render(job, sender, date=date)
    assert fast.data == render_with_stdlib(job, sender, date=date).as_bytes()
    assert (fast.sender, fast.recipient) == (sender, job.to)


def test_unusual_headers_go_through_the_standard_library() -> None:
    job = three_way_match().emails[0]
    accents = job.model_copy(update={"to": "jos\u00e9@voorbeeld.example"})
    message = message_from_bytes(render(accents, "vi@regio.example").data, policy=policy.default)
    assert message["To"] == "jos\u00e9@voorbeeld.example"
    accented = job.model_copy(
        update={"data": job.data.model_copy(update={"melding_ref": "caf\u00e9-1"})}
    )
    fast = render(accented, "vi@regio.example", date="Sat, 28 Nov 2026 12:00:00 -0000")
    slow = render_with_stdlib(accented, "vi@regio.example", date="Sat, 28 Nov 2026 12:00:00 -0000")
    assert fast.data == slow.as_bytes()
    injected = job.model_copy(update={"to": "a@b.example\nBcc: c@d.example"})
    with pytest.raises(ValueError):
        render(injected, "vi@regio.example")


# The keys of each template's data as e-mail jobs have always carried them: a job
# queued by an older version must still render after an upgrade.
WIRE_KEYS = {
    "match_reporter": {
        "match_id",
        "melding_ref",
        "organisation",
        "own_archived",
        "counterparts",
        "lead",
        "lead_is_yours",
    },
    "match_coordinator": {"match_id", "municipality", "participants", "lead"},
    "lead_coordinator": {"match_id", "municipality", "lead", "participants"},
    "regie_escalation": {"match_id", "municipality", "lead", "participants"},
    "lead_assigned": {"match_id", "melding_ref", "organisation", "municipality", "counterparts"},
}
COUNTERPART_KEYS = {"partner", "organisation", "sector", "reporter", "registered_at", "archived"}


@pytest.mark.parametrize("job", every_kind_of_job(), ids=lambda job: job.template)
def test_a_job_keeps_its_wire_shape(job: EmailJob) -> None:
    wire = json.loads(job.model_dump_json())
    assert set(wire) == {"message_id", "to", "template", "data"}
    assert wire["template"] == job.template
    data = wire["data"]
    assert set(data) == WIRE_KEYS[job.template]
    people = data.get("counterparts", []) + data.get("participants", [])
    assert people
    for person in people:
        member = {"melding_ref"} if "participants" in data else set()
        assert set(person) == COUNTERPART_KEYS | member
        assert set(person["reporter"]) == {"name", "email", "phone"}
    if data.get("lead"):
        assert set(data["lead"]) == {"partner", "organisation", "reporter"}
    assert EmailJob.model_validate_json(job.model_dump_json()) == job


def test_a_job_queued_by_an_older_version_still_renders() -> None:
    """As the previous version wrote it: the data a plain dict, the dates from
    isoformat()."""
    queued = {
        "message_id": "0b7f3c1e-8d6a-4c55-9a0e-2f4b8c1d9e01",
        "to": "contact@school.example",
        "template": "match_reporter",
        "data": {
            "match_id": str(MATCH_ID),
            "melding_ref": "REF-SCHOOL-1",
            "organisation": "Basisschool De Regenboog",
            "own_archived": False,
            "counterparts": [
                {
                    "partner": "jeugdteam",
                    "organisation": "Jeugdteam Noord",
                    "sector": "jeugdhulp",
                    "reporter": {
                        "name": "Contact jeugdteam",
                        "email": "contact@jeugdteam.example",
                        "phone": None,
                    },
                    "registered_at": "2026-03-02T09:30:00+00:00",
                    "archived": False,
                }
            ],
            "lead": {
                "partner": "jeugdteam",
                "organisation": "Jeugdteam Noord",
                "reporter": {
                    "name": "Contact jeugdteam",
                    "email": "contact@jeugdteam.example",
                    "phone": None,
                },
            },
            "lead_is_yours": False,
        },
    }
    job = EmailJob.model_validate_json(json.dumps(queued))
    assert job.template == "match_reporter"
    _, text = rendered(job)
    assert "uw melding met kenmerk REF-SCHOOL-1 (Basisschool De Regenboog)" in text
    assert "Jeugdteam Noord heeft de regie in deze match." in text
    assert "E-mail: contact@jeugdteam.example" in text
    # The same job as this version writes it renders the same text.
    new = match_event(
        match_id=MATCH_ID, newcomer=SCHOOL, counterparts=[TEAM], lead=TEAM, municipality=None
    )
    ours = next(j for j in new.emails if j.to == "contact@school.example")
    assert rendered(ours)[1] == text
    # Data that does not fit its template is refused, not rendered half.
    queued["template"] = "family_reporter"
    with pytest.raises(ValueError):
        EmailJob.model_validate_json(json.dumps(queued))
