"""Scan text the run produced (service logs, notices, e-mails) for personal data: any
BSN, surname or birth date that went into a message of the run."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"\b[0-9a-f]{32,}\b")
_DIGITS = re.compile(r"\d{9,}")
# A bare date; one followed by "T" is part of a timestamp (registered_at and the like).
_DATE = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?![\dT])")
_WORD = re.compile(r"[^\W\d_]+")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass
class Secrets:
    bsns: set[str] = field(default_factory=set)
    surnames: set[str] = field(default_factory=set)  # lower case, single words
    birth_dates: set[str] = field(default_factory=set)

    def add_surname(self, surname: str) -> None:
        for word in _WORD.findall(surname.lower()):
            if len(word) >= 5:  # short words ("van", "de") are not identifying
                self.surnames.add(word)

    def add_any(self, value: str) -> None:
        """A secret of unknown kind (from the fuzz generators)."""
        if value.isdigit() and len(value) == 9:
            self.bsns.add(value)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.birth_dates.add(value)
        else:
            # The generators start every surname with "Zz" so that it cannot be mistaken
            # for a word of our own; further words are ordinary ones ("Smit") and could.
            self.surnames.update(w for w in _WORD.findall(value.lower()) if w.startswith("zz"))


@dataclass
class Hit:
    source: str
    line: int
    kind: str
    excerpt: str


@dataclass
class ScanResult:
    lines: int = 0
    non_json_lines: int = 0
    non_json_samples: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)


def find_secrets(text: str, secrets: Secrets) -> list[tuple[str, str]]:
    """(kind, the secret) for every secret in `text`."""
    found: list[tuple[str, str]] = []
    # JSON written with ASCII escapes ("\u00e9") would hide an accented surname.
    text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = _HEX.sub(" ", _UUID.sub(" ", text))
    for match in _DIGITS.finditer(text):
        run = match.group()
        for i in range(len(run) - 8):
            if run[i : i + 9] in secrets.bsns:
                found.append(("bsn", run[i : i + 9]))
    for match in _DATE.finditer(text):
        if match.group() in secrets.birth_dates:
            found.append(("birth_date", match.group()))
    for word in _WORD.findall(text.lower()):
        if word in secrets.surnames:
            found.append(("surname", word))
    return found


def _mask(text: str, secret: str) -> str:
    """An excerpt around the hit with the secret itself masked (the report is a file)."""
    lowered = text.lower()
    at = lowered.find(secret.lower())
    start = max(0, at - 60)
    excerpt = text[start : at + len(secret) + 60] if at >= 0 else text[:120]
    return excerpt.replace(secret, "<" + "#" * len(secret) + ">")


def scan_log_files(paths: Iterable[Path], secrets: Secrets) -> ScanResult:
    result = ScanResult()
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, raw in enumerate(handle, 1):
                result.lines += 1
                text = raw.rstrip("\n")
                try:
                    record = json.loads(text)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    record.pop("timestamp", None)
                    result.levels[str(record.get("level", "?"))] += 1
                    result.events[str(record.get("event", "?"))] += 1
                    text = json.dumps(record, ensure_ascii=False)
                else:
                    result.non_json_lines += 1
                    if len(result.non_json_samples) < 5:
                        result.non_json_samples.append(f"{path.name}: {text[:120]}")
                for kind, secret in find_secrets(text, secrets):
                    result.hits.append(Hit(path.name, number, kind, _mask(text, secret)))
    return result


def scan_texts(named: Iterable[tuple[str, str]], secrets: Secrets) -> list[Hit]:
    hits = []
    for name, text in named:
        for kind, secret in find_secrets(text, secrets):
            hits.append(Hit(name, 0, kind, _mask(text, secret)))
    return hits
