"""The portal through its pages (httpx against the ASGI app) with the real database
and broker: it publishes for its partner with the portal's login and headers, and shows
what the index answers and signals in the partner's mailbox."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import asyncpg
import pyotp
import pytest

from services.portal import accounts, readmodel
from services.portal.accounts import Role
from shared.amqp.topology import INGEST_QUEUE, OUTBOUND_EXCHANGE
from shared.clock import utcnow
from shared.contract.portal import ACTOR_HEADER, ON_BEHALF_OF_HEADER
from shared.outgoing import OutboundMessage
from shared.partner_client import PartnerClient
from tests.conftest import PORTAL_SCHOOL, System
from tests.integration.portal_support import (
    Browser,
    make_account,
    next_code,
    portal_settings,
    start_portal,
)
from tests.integration.test_matching import Mailbox
from tests.support import (
    RegionUnderTest,
    drain,
    eventually,
    queue_depth,
    run_cli,
    valid_bsn,
)


@pytest.fixture
async def browsers() -> AsyncIterator[list[Browser]]:
    """Browsers a test opens; closed at its end."""
    made: list[Browser] = []
    try:
        yield made
    finally:
        for browser in made:
            await browser.close()


def _register_form(bsn: str, **extra: str) -> dict[str, str]:
    return {
        "bsn": bsn,
        "birth_date": "2015-03-02",
        "municipality": "0363",
        "reporter_name": "I. Begeleider",
        "reporter_email": "ib@linde.example",
        "reporter_phone": "+31201234567",
        **extra,
    }


async def _ref_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    found = re.fullmatch(r"/meldingen/([A-Z0-9-]+)(\?.*)?", location)
    assert found, location
    return found[1]


async def test_a_registration_goes_out_with_the_portal_headers_and_the_answers_show(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    # No pipeline: what the portal publishes waits in vi.ingest, and the test plays
    # the index's answers into the school's mailbox.
    settings = portal_settings(portal_region, receipt_wait_seconds=0.2)
    app = await start_portal(system, settings)
    account = await make_account(portal_region, PORTAL_SCHOOL)
    browser = Browser(app)
    browsers.append(browser)
    assert (await browser.log_in(account)).status_code == 303

    form = await browser.get("/meldingen/nieuw")
    assert 'value="I. Begeleider"' not in form.text  # prefilled from the account instead
    assert f'value="{account.user.email}"' in form.text
    ref = await _ref_of(
        await browser.post_form(
            "/meldingen/nieuw", "/meldingen/nieuw", _register_form(valid_bsn(31))
        )
    )
    runtime = system.runtimes[0]

    async def published() -> list[aio_pika.abc.AbstractIncomingMessage]:
        return await drain(runtime, INGEST_QUEUE)

    got: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def arrived() -> bool:
        got.extend(await published())
        return bool(got)

    await eventually(arrived)
    [message] = got
    assert portal_region.region.portal is not None
    assert message.user_id == portal_region.region.portal.broker_user
    assert message.headers[ON_BEHALF_OF_HEADER] == PORTAL_SCHOOL
    assert message.headers[ACTOR_HEADER] == str(account.user.id)
    body = json.loads(message.body)
    assert body["type"] == "melding.register" and body["melding_ref"] == ref
    assert body["youth"] == {
        "bsn": valid_bsn(31),
        "birth_date": "2015-03-02",
        "municipality": "0363",
    }
    assert body["reporter"]["email"] == "ib@linde.example"

    page = await browser.get(f"/meldingen/{ref}")
    assert "In behandeling" in page.text

    async def ready() -> bool:
        return (await runtime.readiness()).get("portal_broker") is True

    await eventually(ready)  # /readyz includes the portal's own broker login

    # The index answers in partner.linde: accepted, then a match with a team.
    async def answer(body: dict[str, Any], correlation_id: str | None = None) -> None:
        await runtime.publisher.publish(
            OutboundMessage(
                OUTBOUND_EXCHANGE,
                PORTAL_SCHOOL,
                json.dumps(body).encode(),
                message_type=None,
                message_id=f"out-{body['type']}-{ref}",
                correlation_id=correlation_id,
            ),
        )

    await answer(
        {
            "type": "receipt",
            "in_reply_to": message.message_id,
            "status": "accepted",
            "melding_ref": ref,
            "errors": [],
            "inform": ["parents"],
        },
        message.message_id,
    )
    match_id = "6f1c1f7e-33a4-4c0e-9a53-3c8b8f5d1a01"
    notice = {
        "type": "match.notice",
        "match_id": match_id,
        "melding_ref": ref,
        "lead": None,
        "counterparts": [
            {
                "partner": "jeugdteam",
                "organisation": "Jeugdteam Noord",
                "sector": "jeugdhulp",
                "reporter": {
                    "name": "T. Hulpverlener",
                    "email": "t@jt.example",
                    "phone": "+31100000000",
                },
                "registered_at": "2026-11-30T10:00:00+01:00",
                "archived": False,
            }
        ],
    }
    await answer(notice)
    await answer(notice)  # a redelivery with the same message_id changes nothing

    async def shown() -> bool:
        page = await browser.get(f"/meldingen/{ref}")
        return "Jeugdteam Noord" in page.text

    await eventually(shown)
    sent = await db.fetchval(
        "SELECT body FROM portal_message WHERE message_id = $1", uuid.UUID(message.message_id)
    )
    assert valid_bsn(31).encode() not in bytes(sent)  # answered: its copy of the youth goes
    page = await browser.get(f"/meldingen/{ref}")
    assert "Actief" in page.text and "t@jt.example" in page.text
    assert "Informeer de ouders" in page.text
    assert valid_bsn(31) in page.text  # the school sees what it entered itself
    listed = await browser.get("/meldingen")
    assert ref in listed.text and "Jeugdteam Noord" in listed.text
    assert (
        await db.fetchval(
            "SELECT count(*) FROM portal_notice WHERE partner_id = $1 AND type = 'match.notice'",
            PORTAL_SCHOOL,
        )
        == 1
    )
    # Every look at the melding is in the audit log with the user who looked.
    looks = await db.fetch(
        "SELECT actor, portal_user FROM audit_log WHERE action = 'portal_melding_viewed'"
        " AND melding_ref = $1",
        ref,
    )
    assert looks and {(r["actor"], r["portal_user"]) for r in looks} == {
        (PORTAL_SCHOOL, str(account.user.id))
    }


async def test_a_portal_school_and_a_linked_team_match_and_the_school_takes_the_lead(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    team_client = PartnerClient(
        portal_region.partner_url("jeugdteam"),
        "jeugdteam",
        portal_region.region.partners_by_id["jeugdteam"].own_broker_user,
    )
    await team_client.start()
    try:
        await _match_and_lead(portal_region, system, browsers, db, Mailbox(team_client))
    finally:
        await team_client.close()


async def _match_and_lead(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
    team: Mailbox,
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    account = await make_account(portal_region, PORTAL_SCHOOL)
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(account)
    youth = valid_bsn(4711)

    ref = await _ref_of(
        await browser.post_form("/meldingen/nieuw", "/meldingen/nieuw", _register_form(youth))
    )
    assert (await team.register("T-9", bsn=youth))["status"] == "accepted"
    told_team = (await team.notice("match.notice", "T-9")).body
    assert told_team["counterparts"][0]["organisation"] == "Basisschool De Linde"
    assert told_team["counterparts"][0]["reporter"]["email"] == "ib@linde.example"

    async def matched() -> bool:
        return "Jeugdteam Noord" in (await browser.get(f"/meldingen/{ref}")).text

    await eventually(matched)
    claimed = await browser.post_form(f"/meldingen/{ref}", f"/meldingen/{ref}/regie", {})
    assert claimed.status_code == 303
    page = await browser.get(claimed.headers["location"])
    assert "Regie nemen: Geaccepteerd" in page.text

    async def leading() -> bool:
        return "Uw organisatie heeft de regie" in (await browser.get(f"/meldingen/{ref}")).text

    await eventually(leading)
    lead = (await team.notice("regie.notice", "T-9")).body["lead"]
    assert lead["partner"] == PORTAL_SCHOOL

    informed = await browser.post_form(
        f"/meldingen/{ref}",
        f"/meldingen/{ref}/informeren",
        {"kind": "informed", "informed": "parents", "informed_on": "2026-01-05"},
    )
    page = await browser.get(informed.headers["location"])
    assert "de ouders geïnformeerd op 05-01-2026" in page.text

    withdrawn = await browser.post_form(
        f"/meldingen/{ref}", f"/meldingen/{ref}/intrekken", {"reason": "risk_ended"}
    )
    page = await browser.get(withdrawn.headers["location"])
    assert "Ingetrokken" in page.text and "zorg is weggenomen" in page.text
    assert ref in (await browser.get("/meldingen?archief=1")).text
    assert ref not in (await browser.get("/meldingen")).text
    # The index recorded the professional behind each action.
    actors = await db.fetch(
        "SELECT action, portal_user FROM audit_log WHERE actor = $1 AND action IN"
        " ('registered', 'lead_claimed', 'archived') ORDER BY id",
        PORTAL_SCHOOL,
    )
    assert [(r["action"], r["portal_user"]) for r in actors] == [
        ("registered", str(account.user.id)),
        ("lead_claimed", str(account.user.id)),
        ("archived", str(account.user.id)),
    ]


async def test_a_refused_registration_shows_dutch_messages_beside_the_fields(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    for name in ("ingest", "matcher", "notifier"):
        await system.start(name)
    app = await start_portal(system, portal_settings(portal_region))
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))

    refused = await browser.post_form(
        "/meldingen/nieuw",
        "/meldingen/nieuw",
        _register_form("123456789", birth_date="1990-01-01"),
    )
    assert refused.status_code == 422
    bsn_error = re.search(r'id="bsn-fout">(.*?)</p>', refused.text, re.S)
    assert bsn_error and "elfproef" in bsn_error[1]
    birth_error = re.search(r'id="birth_date-fout">(.*?)</p>', refused.text, re.S)
    assert birth_error and "23 jaar of ouder" in birth_error[1]
    assert 'aria-invalid="true"' in refused.text
    assert 'value="123456789"' in refused.text  # what was typed stays


async def test_login_needs_both_factors_and_repeated_failures_lock_the_account(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    account = await make_account(portal_region, PORTAL_SCHOOL)
    browser = Browser(app)
    browsers.append(browser)

    no_code = await browser.log_in(account, code="")
    assert no_code.status_code == 401 and "Inloggen is niet gelukt" in no_code.text
    wrong_password = await browser.log_in(account, password="niet het wachtwoord")
    assert wrong_password.status_code == 401
    assert (await browser.get("/meldingen")).headers["location"] == "/inloggen"

    ok = await browser.log_in(account)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith("__Host-vi_session=")
    assert (
        "HttpOnly" in cookie
        and "Secure" in cookie
        and "SameSite=strict" in cookie.replace("SameSite=Strict", "SameSite=strict")
    )
    assert (await browser.get("/meldingen")).status_code == 200

    # Five failures in a row lock the account: then even the right factors fail.
    stranger = Browser(app)
    browsers.append(stranger)
    for _ in range(5):
        assert (await stranger.log_in(account, code="000000")).status_code == 401
    locked = await stranger.log_in(account, code=next_code(account))
    assert locked.status_code == 401 and "geblokkeerd" in locked.text


async def test_many_failed_logins_from_one_address_refuse_that_address_only(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    settings = portal_settings(portal_region, max_failed_logins_per_address=3)
    app = await start_portal(system, settings)
    # One wrong guess at each of three accounts: no account locks, the address does.
    accounts_tried = [await make_account(portal_region, PORTAL_SCHOOL) for _ in range(4)]
    sprayer = Browser(app, address="192.0.2.7")
    colleague = Browser(app, address="198.51.100.9")
    browsers.extend([sprayer, colleague])
    for account in accounts_tried[:3]:
        assert (await sprayer.log_in(account, password="zomer2026!")).status_code == 401
    refused = await sprayer.log_in(accounts_tried[3])  # even with the right factors
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "900"
    assert "te veel mislukte inlogpogingen" in refused.text
    assert (await sprayer.get("/meldingen")).headers["location"] == "/inloggen"
    # Another address is not affected, nor is the account itself.
    assert (await colleague.log_in(accounts_tried[3])).status_code == 303
    assert (
        await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'portal_login_refused'")
        == 1
    )
    # After the window the address may try again.
    await db.execute(
        "UPDATE portal_login_address SET window_start = window_start - interval '16 minutes'"
    )
    assert (await sprayer.log_in(accounts_tried[0])).status_code == 303
    assert await accounts.forget_ended_address_windows(db, sprayer.portal.policy, utcnow()) == 1


async def test_a_session_lapses_after_inactivity(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    app = await start_portal(system, portal_settings(portal_region, idle_minutes=15))
    browser, idle = Browser(app), Browser(app)
    browsers.extend([browser, idle])
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    await idle.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    assert (await browser.get("/meldingen")).status_code == 200
    real_clock = browser.portal.clock
    browser.portal.clock = lambda: real_clock() + timedelta(minutes=14)
    assert (await browser.get("/meldingen")).status_code == 200  # kept alive by use
    browser.portal.clock = lambda: real_clock() + timedelta(minutes=30)
    assert (await browser.get("/meldingen")).headers["location"] == "/inloggen"
    # The sweep removes sessions nobody comes back to (the idle browser's); the other
    # one ended when it was found lapsed.
    later = real_clock() + timedelta(minutes=16)
    assert await accounts.forget_lapsed_sessions(db, browser.portal.policy, later) == 1
    assert await db.fetchval("SELECT count(*) FROM portal_session") == 0


async def test_a_form_post_without_its_csrf_token_is_refused_and_sends_nothing(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    refused = await browser.client.post("/meldingen/nieuw", data=_register_form(valid_bsn(5)))
    assert refused.status_code == 403 and "Formulier verlopen" in refused.text
    forged = await browser.client.post(
        "/meldingen/nieuw", data={"csrf": "guessed", **_register_form(valid_bsn(5))}
    )
    assert forged.status_code == 403
    login_without = await Browser(app).client.post(
        "/inloggen", data={"email": "x@y.example", "password": "x", "code": "123456"}
    )
    assert login_without.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0


async def test_another_organisations_melding_is_not_reachable_by_its_url(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    app = await start_portal(system, portal_settings(portal_region, receipt_wait_seconds=0.1))
    owner, colleague, admin, outsider = (Browser(app) for _ in range(4))
    browsers.extend([owner, colleague, admin, outsider])
    await owner.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    await colleague.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    await admin.log_in(await make_account(portal_region, PORTAL_SCHOOL, role=Role.ORG_ADMIN))
    await outsider.log_in(await make_account(portal_region, "eik"))  # another portal school
    ref = await _ref_of(
        await owner.post_form("/meldingen/nieuw", "/meldingen/nieuw", _register_form(valid_bsn(77)))
    )
    assert (await owner.get(f"/meldingen/{ref}")).status_code == 200
    # The organisation's admin sees it; a colleague (professional) and another
    # organisation do not, and cannot act on it.
    assert (await admin.get(f"/meldingen/{ref}")).status_code == 200
    for stranger in (colleague, outsider):
        page = await stranger.get(f"/meldingen/{ref}")
        assert page.status_code == 404 and valid_bsn(77) not in page.text
        action = await stranger.post_form(
            "/meldingen", f"/meldingen/{ref}/intrekken", {"reason": "unjustified"}
        )
        assert action.status_code == 404
        assert ref not in (await stranger.get("/meldingen")).text


async def test_an_org_admin_invites_a_colleague_who_activates_and_is_later_disabled(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    admin, newcomer, professional = Browser(app), Browser(app), Browser(app)
    browsers.extend([admin, newcomer, professional])
    await admin.log_in(await make_account(portal_region, PORTAL_SCHOOL, role=Role.ORG_ADMIN))
    await professional.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    assert (await professional.get("/beheer")).status_code == 403

    invited = await admin.post_form(
        "/beheer",
        "/beheer/uitnodigen",
        {"email": "nieuw@linde.example", "name": "N. Collega", "role": "professional"},
    )
    assert invited.status_code == 200
    link = re.search(r'id="activeringslink">https://portal\.test(/activeren/[^<]+)<', invited.text)
    assert link

    page = await newcomer.get(link[1])
    assert page.status_code == 200 and "<svg" in page.text
    secret_text = re.search(r'id="secret">([A-Z2-7 ]+)<', page.text)
    assert secret_text
    secret = secret_text[1].replace(" ", "")
    too_short = await newcomer.post_form(
        link[1],
        link[1],
        {
            "name": "N. Collega",
            "password": "kort",
            "password_repeat": "kort",
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert too_short.status_code == 422 and "minstens 12 tekens" in too_short.text
    activated_at = utcnow()
    activated = await newcomer.post_form(
        link[1],
        link[1],
        {
            "name": "N. Collega",
            "phone": "",
            "password": "een lang wachtwoord 1",
            "password_repeat": "een lang wachtwoord 1",
            "code": pyotp.TOTP(secret).at(activated_at),
        },
    )
    assert activated.status_code == 303
    assert (await newcomer.get(link[1])).status_code == 404  # used once
    logged_in = await newcomer.post_form(
        "/inloggen",
        "/inloggen",
        {
            "email": "nieuw@linde.example",
            "password": "een lang wachtwoord 1",
            # A later code than activation used (each is accepted once): the current
            # one, or the next while the activation's step still runs.
            "code": pyotp.TOTP(secret).at(max(utcnow(), activated_at + timedelta(seconds=30))),
        },
    )
    assert logged_in.status_code == 303
    assert (await newcomer.get("/meldingen")).status_code == 200

    listing = await admin.get("/beheer")
    user_id = re.search(
        r'action="/beheer/gebruikers/([0-9a-f-]+)/blokkeren"[^>]*>\s*'
        r'<input type="hidden" name="csrf" value="[^"]+">\s*'
        r'<button[^>]*aria-label="Blokkeren: nieuw@linde.example"',
        listing.text,
    )
    assert user_id
    disabled = await admin.post_form("/beheer", f"/beheer/gebruikers/{user_id[1]}/blokkeren", {})
    assert disabled.status_code == 200 and "geblokkeerd" in disabled.text
    assert (await newcomer.get("/meldingen")).headers["location"] == "/inloggen"
    # An account that is no id at all is not found either.
    nobody = await admin.post_form("/beheer", "/beheer/gebruikers/geen-id/blokkeren", {})
    assert nobody.status_code == 404


async def test_a_message_the_read_model_cannot_apply_is_kept_and_the_mailbox_goes_on(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    app = await start_portal(system, portal_settings(portal_region, receipt_wait_seconds=0.1))
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    ref = await _ref_of(
        await browser.post_form(
            "/meldingen/nieuw", "/meldingen/nieuw", _register_form(valid_bsn(12))
        )
    )
    runtime = system.runtimes[0]
    for message_id, body in (
        ("bad-1", {"type": "match.notice", "match_id": "not-a-uuid", "melding_ref": ref}),
        ("bad-2", b"\xff not json"),
        ("good-1", {"type": "inform.reminder", "melding_ref": ref, "inform": ["parents"]}),
    ):
        await runtime.publisher.publish(
            OutboundMessage(
                OUTBOUND_EXCHANGE,
                PORTAL_SCHOOL,
                body if isinstance(body, bytes) else json.dumps(body).encode(),
                message_type=None,
                message_id=message_id,
            ),
        )

    async def all_seen() -> bool:
        kinds = await db.fetch(
            "SELECT message_id, type FROM portal_notice WHERE partner_id = $1 ORDER BY 1",
            PORTAL_SCHOOL,
        )
        return [(r["message_id"], r["type"]) for r in kinds] == [
            ("bad-1", "match.notice"),
            ("bad-2", "unreadable"),
            ("good-1", "inform.reminder"),
        ]

    await eventually(all_seen)
    assert await db.fetchval(
        "SELECT reminded_at IS NOT NULL FROM portal_melding WHERE melding_ref = $1", ref
    )
    assert (
        await db.fetchval("SELECT match_id FROM portal_melding WHERE melding_ref = $1", ref) is None
    )
    assert (await queue_depth(runtime, f"partner.{PORTAL_SCHOOL}"))[0] == 0


async def test_the_operator_adds_an_account_and_its_link_opens_the_activation_page(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    app = await start_portal(system, portal_settings(portal_region))
    env = {"VI_PORTAL_BASE_URL": "https://portal.test"}
    added = await run_cli(
        portal_region,
        "portal",
        "user",
        "add",
        "--partner",
        PORTAL_SCHOOL,
        "--email",
        "beheer@linde.example",
        "--role",
        "org_admin",
        env=env,
    )
    assert added.exit_code == 0, added.output
    link = re.search(r"activation link: https://portal\.test(/activeren/\S+)", added.output)
    assert link
    browser = Browser(app)
    browsers.append(browser)
    page = await browser.get(link[1])
    assert page.status_code == 200 and "beheer@linde.example" in page.text

    linked = await run_cli(
        portal_region,
        "portal",
        "user",
        "add",
        "--partner",
        "school",
        "--email",
        "x@y.example",
        env=env,
    )
    assert linked.exit_code != 0 and 'channel = "portal"' in linked.output
    again = await run_cli(portal_region, "portal", "user", "list", "--partner", PORTAL_SCHOOL)
    assert "beheer@linde.example" in again.output and "org_admin" in again.output

    # The demo account (scripts/run.sh) logs in with what the command prints.
    demo = await run_cli(
        portal_region,
        "portal",
        "demo-account",
        "--partner",
        PORTAL_SCHOOL,
        "--email",
        "demo@linde.example",
    )
    password = re.search(r"^password: (\S+)$", demo.output, re.M)
    secret = re.search(r"^TOTP secret: (\S+)", demo.output, re.M)
    assert password and secret
    code = await run_cli(portal_region, "portal", "code", secret[1])
    totp = pyotp.TOTP(secret[1])
    assert code.output.strip() in {totp.at(utcnow()), totp.at(utcnow() - timedelta(seconds=30))}
    logged_in = await browser.post_form(
        "/inloggen",
        "/inloggen",
        {"email": "demo@linde.example", "password": password[1], "code": code.output.strip()},
    )
    assert logged_in.status_code == 303


async def test_later_notices_move_end_and_widen_what_the_pages_show(
    portal_region: RegionUnderTest, system: System, browsers: list[Browser]
) -> None:
    app = await start_portal(system, portal_settings(portal_region, receipt_wait_seconds=0.1))
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    ref = await _ref_of(
        await browser.post_form(
            "/meldingen/nieuw", "/meldingen/nieuw", _register_form(valid_bsn(55))
        )
    )
    runtime = system.runtimes[0]
    [request] = await drain(runtime, INGEST_QUEUE)
    match_id = "0b6f5c1e-8a77-4d8e-9d1c-2f3a4b5c6d7e"
    team = {
        "partner": "jeugdteam",
        "organisation": "Jeugdteam Noord",
        "sector": "jeugdhulp",
        "reporter": {"name": "T. Hulp", "email": "t@jt.example", "phone": "+31100000000"},
        "registered_at": "2026-11-30T10:00:00+01:00",
    }
    notices: list[tuple[dict[str, Any], str | None]] = [
        (
            {
                "type": "receipt",
                "in_reply_to": request.message_id,
                "status": "accepted",
                "melding_ref": ref,
                "errors": [],
                "inform": ["youth", "parents"],
            },
            request.message_id,
        ),
        (
            {
                "type": "match.notice",
                "match_id": match_id,
                "melding_ref": ref,
                "lead": None,
                "counterparts": [{**team, "archived": False}],
            },
            None,
        ),
        ({"type": "youth.moved", "melding_ref": ref, "municipality": "0599"}, None),
        (
            {
                "type": "family.notice",
                "family_match_id": "5d2c1b0a-1111-4222-8333-944455556666",
                "melding_ref": ref,
                "relation": "parent",
                "counterpart": {
                    **team,
                    "partner": "jgz",
                    "organisation": "GGD Jeugdgezondheidszorg",
                    "sector": "jgz",
                },
            },
            None,
        ),
        ({"type": "match.ended", "match_id": match_id, "melding_ref": ref}, None),
    ]
    for number, (body, correlation_id) in enumerate(notices):
        await runtime.publisher.publish(
            OutboundMessage(
                OUTBOUND_EXCHANGE,
                PORTAL_SCHOOL,
                json.dumps(body).encode(),
                message_type=None,
                message_id=f"later-{number}",
                correlation_id=correlation_id,
            ),
        )

    async def ended_match_shown() -> bool:
        return "Deze match is beëindigd" in (await browser.get(f"/meldingen/{ref}")).text

    await eventually(ended_match_shown)
    page = (await browser.get(f"/meldingen/{ref}")).text
    assert "Rotterdam" in page  # moved
    assert "GGD Jeugdgezondheidszorg" in page and "ander kind uit hetzelfde gezin" in page
    assert "Informeer de jongere en de ouders" in page
    assert "Regie nemen" not in page  # no live match to lead

    await runtime.publisher.publish(
        OutboundMessage(
            OUTBOUND_EXCHANGE,
            PORTAL_SCHOOL,
            json.dumps({"type": "melding.ended", "melding_ref": ref, "reason": "expired"}).encode(),
            message_type=None,
            message_id="later-end",
        ),
    )

    async def archived() -> bool:
        return ref in (await browser.get("/meldingen?archief=1")).text

    await eventually(archived)
    page = (await browser.get(f"/meldingen/{ref}")).text
    assert "Beëindigd (verlopen na twee jaar" in page
    assert f'action="/meldingen/{ref}/intrekken"' not in page  # nothing left to end
    assert ref not in (await browser.get("/meldingen")).text


async def test_the_portal_forgets_the_youth_when_the_index_does(
    portal_region: RegionUnderTest,
    system: System,
    browsers: list[Browser],
    db: asyncpg.Connection[Any],
) -> None:
    app = await start_portal(system, portal_settings(portal_region, receipt_wait_seconds=0.1))
    browser = Browser(app)
    browsers.append(browser)
    await browser.log_in(await make_account(portal_region, PORTAL_SCHOOL))
    refs = [
        await _ref_of(
            await browser.post_form(
                "/meldingen/nieuw", "/meldingen/nieuw", _register_form(valid_bsn(number))
            )
        )
        for number in (61, 62)
    ]
    runtime = system.runtimes[0]
    for number, (ref, reason) in enumerate(zip(refs, ("erased", "expired"), strict=True)):
        await runtime.publisher.publish(
            OutboundMessage(
                OUTBOUND_EXCHANGE,
                PORTAL_SCHOOL,
                json.dumps(
                    {"type": "melding.ended", "melding_ref": ref, "reason": reason}
                ).encode(),
                message_type=None,
                message_id=f"end-{number}",
            ),
        )

    async def both_ended() -> bool:
        ended = await db.fetchval("SELECT count(*) FROM portal_melding WHERE status = 'ended'")
        return bool(ended == 2)

    await eventually(both_ended)
    erased, expired = refs
    page = (await browser.get(f"/meldingen/{erased}")).text
    assert "Gegevens verwijderd" in page and valid_bsn(61) not in page
    assert await db.fetchval(
        "SELECT bsn IS NULL AND birth_date IS NULL FROM portal_melding WHERE melding_ref = $1",
        erased,
    )
    # An expired melding stays in the archive (its identity with it) as long as the
    # index keeps it: five years; then it goes altogether.
    assert valid_bsn(62) in (await browser.get(f"/meldingen/{expired}")).text
    assert await readmodel.forget_expired(db, utcnow() + timedelta(days=365 * 5 - 2)) == 0
    assert await readmodel.forget_expired(db, utcnow() + timedelta(days=365 * 5 + 2)) == 2
    assert (await browser.get(f"/meldingen/{expired}")).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM portal_message") == 0
