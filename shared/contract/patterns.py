"""The regular expressions that are the rule for the contract's text, dates and times.

The index checks a value by searching it with the pattern, exactly as a JSON Schema
validator does, and the published schema carries the very same pattern: the two
cannot disagree. Each pattern reads the same in ECMA-262 with the ``u`` flag (what
JSON Schema validators use) and in Python's ``re``:

* character classes are spelled out, as ``\\s``, ``\\d`` and ``\\w`` mean something
  different in each engine;
* the characters named are all in the Basic Multilingual Plane, written ``\\uXXXX``;
* the end of the text is written ``(?![\\s\\S])``, because Python's ``$`` also
  matches just before a final newline.

Lengths in a pattern count characters (code points), as ``maxLength`` does.
"""

from __future__ import annotations

from typing import Final

Ranges = tuple[tuple[int, int], ...]

# Control (Cc), format (Cf: zero-width and bidi controls, soft hyphen, ...), line and
# paragraph separators: never allowed in text that ends up in records and e-mails.
# A fixed list, so that the rule does not move with the Unicode version of whatever
# Python runs the index. Characters outside the BMP (emoji and the like) are allowed.
FORBIDDEN: Final[Ranges] = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
)
# Unicode's White_Space: what is trimmed from both ends of names, phone numbers and
# the deferral reason.
WHITESPACE: Final[Ranges] = (
    (0x0009, 0x000D),
    (0x0020, 0x0020),
    (0x0085, 0x0085),
    (0x00A0, 0x00A0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
# Tab and line breaks: allowed inside a free-text note only.
NOTE_BREAKS: Final[Ranges] = ((0x0009, 0x000A), (0x000D, 0x000D))

WHITESPACE_CHARS: Final = "".join(chr(c) for lo, hi in WHITESPACE for c in range(lo, hi + 1))

END: Final = r"(?![\s\S])"


def _escape(code: int) -> str:
    return f"\\u{code:04x}"


def char_class(*sets: Ranges, negate: bool = False, allowing: Ranges = (), extra: str = "") -> str:
    """A class of the characters in ``sets`` (all but those, with ``negate``), less
    those in ``allowing``; ``extra`` is added as written (escaped for a class)."""
    allowed = {c for lo, hi in allowing for c in range(lo, hi + 1)}
    codes = sorted({c for ranges in sets for lo, hi in ranges for c in range(lo, hi + 1)} - allowed)
    parts: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], -1]:
        if code != prev + 1:
            parts.append(_escape(start) if start == prev else f"{_escape(start)}-{_escape(prev)}")
            start = code
        prev = code
    return "[" + ("^" if negate else "") + "".join(parts) + extra + "]"


_WS: Final = char_class(WHITESPACE)
# What trimmed text starts and ends with.
_VISIBLE: Final = char_class(FORBIDDEN, WHITESPACE, negate=True)


def trimmed_text(max_length: int, *, note: bool = False, optional: bool = False) -> str:
    """Text that, trimmed of whitespace at both ends, has 1 to ``max_length``
    characters (or none at all, when ``optional``), none of them forbidden; a
    ``note`` may also hold tabs and line breaks."""
    inner = char_class(FORBIDDEN, negate=True, allowing=NOTE_BREAKS if note else ())
    body = f"{_VISIBLE}(?:{inner}{{0,{max_length - 2}}}{_VISIBLE})?{_WS}*"
    # Whitespace before the first visible character is not also matched by `inner`,
    # so backtracking stays within the length limit.
    return f"^{_WS}*(?:{body}){'?' if optional else ''}{END}"


BSN: Final = "^[0-9]{9}" + END
MUNICIPALITY: Final = "^[0-9]{4}" + END
BAG_ID: Final = "^[0-9]{16}" + END
# A melding_ref is used exactly as sent: no forbidden characters, and no whitespace
# other than the plain space.
MELDING_REF: Final = (
    f"^{char_class(FORBIDDEN, WHITESPACE, negate=True, allowing=((0x20, 0x20),))}*{END}"
)
PERSON_NAME: Final = trimmed_text(200)
PHONE: Final = trimmed_text(32, optional=True)  # blank means "no phone"
DEFERRED_REASON: Final = trimmed_text(500, note=True)

# Deliberately loose: one "@", no whitespace or forbidden character, and nothing
# that has a meaning in a mail header (<>()[],;:"\) so an address can never smuggle
# in a second recipient.
_MAIL_SPECIALS: Final = r'@<>()\[\],;:"\\'
_EMAIL_CHAR: Final = char_class(FORBIDDEN, WHITESPACE, negate=True, extra=_MAIL_SPECIALS)
_DOMAIN_CHAR: Final = char_class(FORBIDDEN, WHITESPACE, negate=True, extra=_MAIL_SPECIALS + ".")
EMAIL: Final = f"^{_EMAIL_CHAR}{{1,64}}@(?:{_DOMAIN_CHAR}+\\.)+{_DOMAIN_CHAR}{{2,}}{END}"

# Calendar dates in the years 1900-2999 that exist, 29 February in leap years only.
_YEAR: Final = "(?:19|2[0-9])[0-9]{2}"
_LEAP_YEAR: Final = "(?:(?:19|2[0-9])(?:0[48]|[2468][048]|[13579][26])|2[048]00)"
_MONTH_DAY: Final = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_DATE: Final = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# Seconds may be left out, up to 9 fraction digits; the offset is required.
_TIME: Final = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?"
_OFFSET: Final = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"

DATE: Final = f"^{_DATE}{END}"
TIMESTAMP: Final = f"^{_DATE}[Tt]{_TIME}{_OFFSET}{END}"
