"""The e-mails, in Dutch for professionals. Each template reads its own model of
`shared.emails`, as the matcher or retention put it in the job: contact data of
professionals and melding references, never anything that identifies the youth (no
BSN, name or birth date). `compose` picks the template by the model."""

from __future__ import annotations

from collections.abc import Sequence

from shared.emails import (
    Counterpart,
    EmailData,
    FamilyCoordinator,
    FamilyReporter,
    InformReminder,
    Lead,
    LeadAssigned,
    LeadCoordinator,
    MatchCoordinator,
    MatchReporter,
    Member,
    Professional,
    RegieEscalation,
    YouthMovedCoordinator,
)

Rendered = tuple[str, str]  # (subject, plain-text body)

SECTOR_LABELS = {
    "jeugdhulp": "jeugdhulp",
    "jgz": "jeugdgezondheidszorg",
    "zorg": "zorg",
    "onderwijs": "onderwijs",
    "wmo": "Wmo",
    "werk_inkomen": "werk en inkomen",
    "politie_justitie": "politie en justitie",
    "gemeente": "gemeente",
}

_FOOTER = (
    "\n\nDit bericht komt van de Verwijsindex van de regio. De Verwijsindex bewaart geen"
    "\ninhoud over de zorg of het signaal; neem voor afstemming rechtstreeks contact op met"
    "\nde genoemde professionals. Antwoorden op dit bericht worden niet gelezen.\n"
)


def _sector(code: str) -> str:
    return SECTOR_LABELS.get(code, code)


def _contact_lines(person: Professional) -> list[str]:
    reporter = person.reporter
    lines = [
        f"- {person.organisation} ({_sector(person.sector)})",
        f"  Contactpersoon: {reporter.name}",
        f"  E-mail: {reporter.email}",
    ]
    if reporter.phone:
        lines.append(f"  Telefoon: {reporter.phone}")
    if isinstance(person, Member) and person.melding_ref:
        lines.append(f"  Kenmerk van hun melding: {person.melding_ref}")
    if isinstance(person, Counterpart) and person.archived:
        lines.append("  Let op: deze melding is eerder afgesloten en staat in het archief.")
    return lines


def _people(people: Sequence[Professional]) -> str:
    return "\n".join(line for p in people for line in _contact_lines(p))


def _lead_line(lead: Lead | None) -> str:
    if not lead:
        return "Regie: nog geen organisatie heeft de regie genomen."
    reporter = lead.reporter
    return f"Regie: {lead.organisation} (contactpersoon {reporter.name}, {reporter.email})."


def _reporter_request(d: MatchReporter, several: bool) -> str:
    """What the reporter is asked to do. Agreeing on the lead is asked only while nobody
    has it, and not of an archived melding (it cannot take the lead)."""
    lead = d.lead
    others = "de andere professionals" if several else "de andere professional"
    if d.own_archived:
        return f"Neem zo nodig contact op met {others}."
    if not lead:
        return (
            "Neem contact met elkaar op om uw hulp af te stemmen en af te spreken wie de regie"
            " neemt."
        )
    if d.lead_is_yours:
        return (
            f"Uw organisatie heeft de regie in deze match. Neem contact op met {others}"
            " om de hulp af te stemmen."
        )
    return (
        f"{lead.organisation} heeft de regie in deze match. Neem contact met elkaar op"
        " om uw hulp af te stemmen."
    )


def match_reporter(d: MatchReporter) -> Rendered:
    counterparts = d.counterparts
    several = len(counterparts) > 1
    subject = f"Match in de Verwijsindex voor uw melding {d.melding_ref}"
    intro = f"Op de jeugdige van uw melding met kenmerk {d.melding_ref} ({d.organisation})" + (
        " hebben ook andere organisaties een melding gedaan."
        if several
        else " heeft ook een andere organisatie een melding gedaan."
    )
    if d.own_archived:
        intro += (
            " Uw melding is eerder afgesloten en staat in het archief; u krijgt dit bericht"
            " eenmalig, zodat u kunt beoordelen of afstemming nodig is."
        )
    body = (
        "Geachte collega,\n\n"
        f"{intro} {_reporter_request(d, several)}\n\n"
        f"Betrokken professional{'s' if several else ''}:\n"
        f"{_people(counterparts)}\n\n"
        f"{_lead_line(d.lead)}\n"
        f"Matchnummer: {d.match_id}"
    )
    return subject, body + _FOOTER


def match_coordinator(d: MatchCoordinator) -> Rendered:
    subject = f"Nieuwe match in de Verwijsindex ({d.municipality})"
    body = (
        "Geachte matchregisseur,\n\n"
        f"Er is een match ontstaan op een jeugdige die in {d.municipality} woont."
        " De volgende professionals zijn over elkaar geïnformeerd; wilt u nagaan of zij"
        f" contact hebben gehad{'' if d.lead else ' en wie de regie neemt'}?\n\n"
        f"{_people(d.participants)}\n\n"
        f"{_lead_line(d.lead)}\n"
        f"Matchnummer: {d.match_id}"
    )
    return subject, body + _FOOTER


def lead_coordinator(d: LeadCoordinator) -> Rendered:
    lead = d.lead
    subject = f"Regie vastgelegd voor match {d.match_id}"
    body = (
        "Geachte matchregisseur,\n\n"
        f"In match {d.match_id} ({d.municipality}) heeft {lead.organisation} de regie."
        f" Contactpersoon: {lead.reporter.name}, {lead.reporter.email}.\n\n"
        "Betrokken professionals:\n"
        f"{_people(d.participants)}"
    )
    return subject, body + _FOOTER


def lead_assigned(d: LeadAssigned) -> Rendered:
    """To the reporter whose organisation the coordinator gave the lead (regie.assign)."""
    counterparts = d.counterparts
    several = len(counterparts) > 1
    subject = f"U heeft de regie gekregen in match {d.match_id}"
    body = (
        "Geachte collega,\n\n"
        f"De matchregisseur van {d.municipality} heeft de regie in match {d.match_id}"
        f" toegewezen aan uw organisatie ({d.organisation}), voor uw melding met kenmerk"
        f" {d.melding_ref}. Wilt u contact opnemen met"
        f" {'de andere professionals' if several else 'de andere professional'}"
        " om de hulp af te stemmen?\n\n"
        f"Betrokken professional{'s' if several else ''}:\n"
        f"{_people(counterparts)}\n\n"
        f"Matchnummer: {d.match_id}"
    )
    return subject, body + _FOOTER


def regie_escalation(d: RegieEscalation) -> Rendered:
    subject = f"Geen regie in match {d.match_id}: actie gevraagd"
    body = (
        "Geachte matchregisseur,\n\n"
        f"In match {d.match_id} ({d.municipality}) heeft binnen de afgesproken termijn"
        " geen organisatie de regie genomen. Wilt u met de betrokken professionals afspreken"
        " wie de regie neemt?\n\n"
        "Betrokken professionals:\n"
        f"{_people(d.participants)}"
    )
    return subject, body + _FOOTER


def youth_moved_coordinator(d: YouthMovedCoordinator) -> Rendered:
    subject = f"Verhuizing naar {d.municipality}: jeugdige met lopende meldingen"
    body = (
        "Geachte matchregisseur,\n\n"
        f"Een jeugdige met lopende meldingen in de Verwijsindex is verhuisd naar"
        f" {d.municipality}. De betrokken professionals zijn op de hoogte gebracht:\n\n"
        f"{_people(d.participants)}"
    )
    return subject, body + _FOOTER


def inform_reminder(d: InformReminder) -> Rendered:
    who = {"youth": "de jeugdige", "parents": "de ouders/wettelijk vertegenwoordigers"}
    targets = " en ".join(who[t] for t in d.inform)
    subject = f"Herinnering: informeer over melding {d.melding_ref}"
    body = (
        "Geachte collega,\n\n"
        f"Voor uw melding met kenmerk {d.melding_ref} is nog niet vastgelegd dat"
        f" {targets} over de melding {'zijn' if len(d.inform) > 1 else 'is'} geïnformeerd,"
        " en ook niet dat en waarom dat is uitgesteld. Wilt u dit doen en het in uw systeem"
        " vastleggen (bericht melding.informed)?"
    )
    return subject, body + _FOOTER


_RELATION_TEXT = {
    "parent": "een ouder gemeen hebben",
    "address": "op hetzelfde woonadres staan ingeschreven",
}


def family_reporter(d: FamilyReporter) -> Rendered:
    """A family match: another child of the family has a melding elsewhere. The other
    child is not named; only the professional is."""
    subject = f"Gezinsmatch in de Verwijsindex voor uw melding {d.melding_ref}"
    body = (
        "Geachte collega,\n\n"
        f"De jeugdige van uw melding met kenmerk {d.melding_ref} ({d.organisation})"
        " hoort volgens de Basisregistratie Personen bij een gezin waarin ook een ander kind"
        " een melding heeft: de kinderen"
        f" {_RELATION_TEXT[d.relation]}."
        " Neem contact op met de andere professional om uw hulp aan het gezin af te"
        " stemmen. Wie het andere kind is, vermeldt de Verwijsindex niet.\n\n"
        "Betrokken professional:\n"
        f"{_people([d.counterpart])}\n\n"
        f"Gezinsmatchnummer: {d.family_match_id}"
    )
    return subject, body + _FOOTER


def family_coordinator(d: FamilyCoordinator) -> Rendered:
    subject = f"Nieuwe gezinsmatch in de Verwijsindex ({d.municipality})"
    body = (
        "Geachte matchregisseur,\n\n"
        f"Er is een gezinsmatch ontstaan: twee kinderen uit één gezin, van wie er ten minste"
        f" één in {d.municipality} woont, hebben elk een melding van een andere"
        " organisatie (de kinderen"
        f" {_RELATION_TEXT[d.relation]})."
        " De volgende professionals zijn over elkaar geïnformeerd; wilt u nagaan of zij"
        " contact hebben gehad?\n\n"
        f"{_people(d.participants)}\n\n"
        f"Gezinsmatchnummer: {d.family_match_id}"
    )
    return subject, body + _FOOTER


def compose(data: EmailData) -> Rendered:
    """The subject and text of the e-mail its template makes of `data`."""
    match data:
        case MatchReporter():
            return match_reporter(data)
        case MatchCoordinator():
            return match_coordinator(data)
        case LeadCoordinator():
            return lead_coordinator(data)
        case LeadAssigned():
            return lead_assigned(data)
        case RegieEscalation():
            return regie_escalation(data)
        case YouthMovedCoordinator():
            return youth_moved_coordinator(data)
        case InformReminder():
            return inform_reminder(data)
        case FamilyReporter():
            return family_reporter(data)
        case FamilyCoordinator():
            return family_coordinator(data)
