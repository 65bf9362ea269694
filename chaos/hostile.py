"""Bad messages at scale, from the hostile generators of the validation fuzz tests
(testing/hostile_messages.py, shared with the fuzz tests).

Hypothesis draws a corpus of distinct hostile bodies; each is sent in one of several
envelopes (which partner, which message_id, with or without user_id), so the run
mixes many thousands of bad messages into the valid workload. Every one must end in a
receipt or in `vi.rejected`, and none may have an effect: a body is kept only when
the validator refuses it for its sender (now and an hour from now), so a generated
message that happens to be valid never touches the run's youths.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.contract.validation import Invalid, validate_inbound
from shared.region.model import RegionConfig
from testing import hostile_messages as fuzz

Envelope = Literal["plain", "no_id", "long_id", "control_id", "latin1_id", "no_user", "reuse"]
ENVELOPES: list[tuple[Envelope, int]] = [
    ("plain", 80),
    ("no_id", 3),
    ("long_id", 2),
    ("control_id", 1),
    ("latin1_id", 1),
    ("no_user", 8),
    ("reuse", 5),
]
MAX_ROUTING_KEY_BYTES = 255


@dataclass(frozen=True)
class Case:
    routing_key: str
    body: bytes
    secrets: tuple[str, ...]  # BSN, surname and birth date put into the body


@dataclass(frozen=True)
class BadMessage:
    partner: str
    routing_key: str
    body: bytes
    envelope: Envelope
    message_id: str | None
    user_id: str | None  # "" = the partner's own login, None = no user_id

    @property
    def answered_without_id(self) -> bool:
        return self.envelope in ("no_id", "long_id", "control_id", "latin1_id")

    def digest(self) -> str:
        """What ingest derives the id of a receipt without in_reply_to from."""
        key = self.routing_key.encode("utf-8", "surrogateescape")
        return hashlib.sha256(key + b"\0" + self.body).hexdigest()


@dataclass
class Corpus:
    cases: list[Case]
    seconds: float
    secrets: set[str] = field(default_factory=set)


def _tagged() -> st.SearchStrategy[tuple[str, bytes, tuple[str, ...]]]:
    def from_mutated(case: tuple[str, bytes, fuzz.Secrets]) -> tuple[str, bytes, tuple[str, ...]]:
        routing_key, body, secrets = case
        return routing_key, body, tuple(secrets.all)

    def from_plausible(
        case: tuple[str, dict[str, Any], fuzz.Secrets],
    ) -> tuple[str, bytes, tuple[str, ...]]:
        # A sound message, to be sent by a partner without the role for it.
        import json

        message_type, body, secrets = case
        return message_type, json.dumps(body).encode(), tuple(secrets.all)

    keys = st.sampled_from(fuzz.ROUTING_KEYS)
    return st.one_of(
        fuzz.mutated_message().map(from_mutated),
        fuzz.mutated_message().map(from_mutated),
        fuzz.mutated_message().map(from_mutated),
        fuzz.plausible_message().map(from_plausible),
        st.tuples(keys, fuzz.json_values.map(_json_bytes), st.just(())),
        st.tuples(keys, st.binary(max_size=600), st.just(())),
        st.tuples(keys, st.sampled_from(fuzz.HOSTILE_STRINGS).map(_text_bytes), st.just(())),
    )


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value).encode("utf-8", "surrogatepass")


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def draw_corpus(n: int) -> Corpus:
    """`n` hostile (routing key, body) cases, drawn by Hypothesis (distinct ones)."""
    import time

    started = time.monotonic()
    seen: set[tuple[str, bytes]] = set()
    cases: list[Case] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_tagged())
    def collect(case: tuple[str, bytes, tuple[str, ...]]) -> None:
        routing_key, body, secrets = case
        if len(routing_key.encode("utf-8", "surrogatepass")) > MAX_ROUTING_KEY_BYTES:
            return
        if (routing_key, body) not in seen:
            seen.add((routing_key, body))
            cases.append(Case(routing_key, body, secrets))

    collect()
    # Deep nesting and an oversize body: cheap to build, hard on parsers.
    for depth in (1_000, 40_000):
        cases.append(Case("melding.register", b"[" * depth + b"1" + b"]" * depth, ()))
        cases.append(Case("melding.register", b'{"youth":' * depth + b"1", ()))
    cases.append(
        Case("melding.register", b'{"type": "melding.register", "x": "' + b"x" * 70_000 + b'"}', ())
    )
    corpus = Corpus(cases, time.monotonic() - started)
    for case in cases:
        corpus.secrets.update(s for s in case.secrets if s)
    return corpus


def _invalid_for(
    case: Case, roles: frozenset[str], municipalities: frozenset[str], now: datetime
) -> bool:
    return all(
        isinstance(
            validate_inbound(
                case.routing_key, case.body, roles=roles, municipalities=municipalities, now=when
            ),
            Invalid,
        )
        for when in (now, now + timedelta(hours=1))
    )


def messages(
    corpus: Corpus, count: int, region: RegionConfig, rng: random.Random, now: datetime
) -> Iterator[BadMessage]:
    """`count` bad messages: corpus cases in envelopes, each refused for its sender."""
    municipalities = frozenset(region.municipalities_by_code)
    partners = list(region.partner)
    names, weights = zip(*ENVELOPES, strict=True)
    made = 0
    reused: list[BadMessage] = []
    while made < count:
        case = rng.choice(corpus.cases)
        envelope: Envelope = rng.choices(names, weights)[0]
        if envelope == "reuse" and reused:
            # The same message_id again: a `duplicate` receipt, nothing else.
            yield rng.choice(reused)
            made += 1
            continue
        order = rng.sample(partners, len(partners))
        sender = next(
            (
                p
                for p in order
                if envelope in ("no_user", "no_id", "long_id", "control_id", "latin1_id")
                or _invalid_for(case, p.role_names, municipalities, now)
            ),
            None,
        )
        if sender is None:
            continue  # valid for everyone: not a bad message
        if envelope in ("plain", "reuse"):
            envelope = "plain"
        message_id: str | None = f"bad-{uuid.uuid4()}"
        user_id: str | None = ""
        if envelope == "no_id":
            message_id = None
        elif envelope == "long_id":
            message_id = "L" * 129
        elif envelope == "control_id":
            message_id = f"bad-\t-{uuid.uuid4()}"
        elif envelope == "latin1_id":
            message_id = f"bericht-{uuid.uuid4()}-\udce9"
        elif envelope == "no_user":
            user_id = None
        message = BadMessage(sender.id, case.routing_key, case.body, envelope, message_id, user_id)
        if envelope == "plain":
            reused.append(message)
        made += 1
        yield message
