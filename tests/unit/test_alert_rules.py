"""The alert rules and Alertmanager: promtool and amtool check them, promtool's unit
tests (deploy/prometheus/alerts.test.yml) make every rule fire when it should and stay
silent when it should not, and every rule leads to its runbook section."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
COMPOSE = ROOT / "docker-compose.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
RUNBOOK_LINK = "docs/operations.md#"


def tool(name: str) -> str:
    """A Prometheus tool on PATH or in .venv/bin (where scripts/bootstrap.sh puts it).
    Missing is a failure, not a skip: the test command must check the rules."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} not found: run scripts/bootstrap.sh (it installs {name})")
    return found


def run(*argv: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)  # noqa: S603
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces
    to hyphens, and -1, -2 ... for repeats. Headings in code blocks do not count."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def test_github_anchors() -> None:
    text = "# Run book\n## `vi.rejected` fills: what now?\n```\n# not a heading\n```\n## Run book"
    assert github_anchors(text) == {"run-book", "virejected-fills-what-now", "run-book-1"}


def test_promtool_checks_the_rules_and_the_prometheus_config() -> None:
    promtool = tool("promtool")
    output = run(promtool, "check", "rules", str(RULES))
    assert f"SUCCESS: {len(alert_rules())} rules found" in output
    # Also loads the rules file the config names, as Prometheus would.
    run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))


def test_promtool_rule_tests_pass() -> None:
    output = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in output


def test_every_rule_is_tested_firing_and_silent() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    tests = load(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fires == set(), "rules never seen firing"
    assert names - silent == set(), "rules never seen staying silent"
    assert (fires | silent) - names == set(), "tests of rules that do not exist"


def test_every_rule_has_severity_summary_and_a_runbook_section() -> None:
    anchors = github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "alert names repeat"
    for rule in rules:
        name = rule["alert"]
        assert name.startswith("VI"), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"].strip(), name
        link = rule["annotations"]["runbook_url"]
        assert link.startswith(RUNBOOK_LINK), name
        assert link.removeprefix(RUNBOOK_LINK) in anchors, f"{name}: no section for {link}"


def test_amtool_checks_the_alertmanager_config() -> None:
    output = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert "SUCCESS" in output


def test_alertmanager_mails_the_operators_through_the_notifiers_smtp_relay() -> None:
    config = load(ALERTMANAGER)
    notifier = load(COMPOSE)["services"]["notifier"]["environment"]
    smtp = urlsplit(notifier["VI_SMTP_URL"])
    assert config["global"]["smtp_smarthost"] == f"{smtp.hostname}:{smtp.port}"
    assert config["global"]["smtp_from"] == notifier.get("VI_MAIL_FROM", Settings().mail_from)
    receivers = {r["name"]: r for r in config["receivers"]}
    # Every route, the default one included, ends in e-mail.
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        (email,) = receivers[route["receiver"]]["email_configs"]
        assert "@" in email["to"] and email["send_resolved"] is True
