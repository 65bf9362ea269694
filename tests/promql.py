"""What a PromQL expression reads: its metric names with their label matchers.

For the checks that every alert rule and dashboard panel reads metrics the system
exports. A tokenizer, not a full parser: a name called like a function is a function
or an aggregation, the lists after `by`, `without`, `on`, `ignoring`, `group_left`
and `group_right` are label names, and what stands in `[...]` is a range.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Keywords that stand alone (binary operators, modifiers).
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
# Keywords followed by a parenthesised list of label names.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{?\w+\}?)                        # Grafana: $__rate_interval
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?(?:[smhdwy]|ms)*)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<matcher>=~|!~|!=|==|=)
  | (?P<punct>[{}()\[\],@])
  | (?P<other>[^\s])
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str

    def accepts(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        matched = re.fullmatch(self.value, actual) is not None
        return matched if self.op == "=~" else not matched


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def accepts(self, labels: dict[str, str]) -> bool:
        return all(m.accepts(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ", ".join(f"{m.label}{m.op}{json.dumps(m.value)}" for m in self.matchers)
        return f"{self.metric}{{{inner}}}" if inner else self.metric


def _tokens(expr: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(expr)]


def _unquote(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _skip_group(tokens: list[tuple[str, str]], i: int, opening: str, closing: str) -> int:
    """Index just past the group that opens at tokens[i]."""
    depth = 0
    while i < len(tokens):
        if tokens[i][1] == opening:
            depth += 1
        elif tokens[i][1] == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening}{closing}")


def _matchers(tokens: list[tuple[str, str]], i: int) -> tuple[tuple[Matcher, ...], int]:
    """The matchers of the `{...}` that opens at tokens[i], and the index past it."""
    end = _skip_group(tokens, i, "{", "}")
    inner = [t for t in tokens[i + 1 : end - 1] if t[1] != ","]
    if len(inner) % 3:
        raise ValueError(f"cannot read label matchers {' '.join(t[1] for t in inner)}")
    found = []
    for k in range(0, len(inner), 3):
        (kind_l, label), (kind_o, op), (kind_v, value) = inner[k : k + 3]
        if (kind_l, kind_o, kind_v) != ("name", "matcher", "string"):
            raise ValueError(f"cannot read label matcher {label} {op} {value}")
        found.append(Matcher(label, op, _unquote(value)))
    return tuple(found), end


def selectors(expr: str) -> list[Selector]:
    """Every metric selector in `expr`, in order."""
    tokens = _tokens(expr)
    texts = [text for kind, text in tokens if kind == "punct"]
    for opening, closing in ("()", "[]", "{}"):
        if texts.count(opening) != texts.count(closing):
            raise ValueError(f"unbalanced {opening}{closing} in {expr!r}")
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "[":
            i = _skip_group(tokens, i, "[", "]")
        elif kind != "name":
            i += 1
        elif text.lower() in _LABEL_LISTS:
            i = _skip_group(tokens, i + 1, "(", ")") if following == "(" else i + 1
        elif (
            text.lower() in _KEYWORDS or following == "(" or following.lower() in ("by", "without")
        ):
            i += 1  # an operator, a function being called, or `sum by (...) (...)`
        elif following == "{":
            matchers, i = _matchers(tokens, i + 1)
            found.append(Selector(text, matchers))
        else:
            found.append(Selector(text))
            i += 1
    return found


def rule_expressions(rules: dict[str, Any]) -> list[str]:
    """The expressions of a Prometheus rules file (as loaded from YAML)."""
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """The query expressions of every panel of a Grafana dashboard, rows included."""
    found: list[str] = []
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop()
        stack.extend(panel.get("panels", []))
        found.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
    return found
