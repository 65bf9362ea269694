"""Every metric an alert rule or a dashboard panel reads exists: with the real services
running (one subprocess each, as deployed), their /metrics and the RabbitMQ
Prometheus plugin's endpoints (as deploy/prometheus/prometheus.yml scrapes them)
export it from the start, with the label values the rule selects on."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.procs import ServiceSet
from services.portal import metrics as portal_metrics
from testing.processes import SERVICES
from tests.promql import Selector, dashboard_expressions, rule_expressions, selectors
from tests.support import RegionUnderTest, cli_env, eventually, http_get

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "verwijsindex.json"
RABBITMQ_PROMETHEUS_PORT = 15692  # prometheus.tcp.port in deploy/rabbitmq/rabbitmq.conf
# Series Prometheus makes itself for every scrape target, not scraped from one.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

Samples = dict[str, list[dict[str, str]]]


def parse(text: str, into: Samples) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            into.setdefault(sample.name, []).append(dict(sample.labels))


def referenced() -> list[tuple[str, Selector]]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (f"{origin}: {expr}", selector)
        for origin, exprs in (
            ("alerts.yml", rule_expressions(rules)),
            ("dashboard", dashboard_expressions(dashboard)),
        )
        for expr in exprs
        for selector in selectors(expr)
    ]


def broker_urls(region: RegionUnderTest) -> list[str]:
    """The RabbitMQ endpoints the scrape config names, for the test's vhost. (The demo
    broker's /metrics is per object; the local one's is aggregated: same names.)"""
    host = urlsplit(region.settings.management_url).hostname
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    urls = []
    for job in config["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        if f"rabbitmq:{RABBITMQ_PROMETHEUS_PORT}" not in targets:
            continue
        params = {**job.get("params", {})}
        if "vhost" in params:
            params["vhost"] = [region.vhost]
        query = urlencode([(k, v) for k, values in params.items() for v in values])
        urls.append(f"http://{host}:{RABBITMQ_PROMETHEUS_PORT}{job['metrics_path']}?{query}")
    assert len(urls) == 2, urls
    return urls


def scrape_jobs() -> set[str]:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    return {job["job_name"] for job in config["scrape_configs"]}


def missing(samples: Samples, wanted: Iterable[tuple[str, Selector]]) -> list[str]:
    """What is referenced but not exported: a name without samples, or no sample that
    carries the label values the selector asks for."""
    problems = []
    jobs = scrape_jobs()
    for origin, selector in wanted:
        if selector.metric in SCRAPE_SERIES:
            job = next((m for m in selector.matchers if m.label == "job"), None)
            if job is not None and not any(job.accepts({"job": j}) for j in jobs):
                problems.append(f"{selector.metric}: no scrape job matches ({origin})")
        elif selector.metric not in samples:
            problems.append(f"{selector.metric}: not exported ({origin})")
        elif not any(selector.accepts(labels) for labels in samples[selector.metric]):
            problems.append(f"{selector}: no series matches ({origin})")
    return problems


@pytest.fixture
async def services(test_region: RegionUnderTest, tmp_path: Path) -> Any:
    running = ServiceSet({**cli_env(test_region), "VI_LOG_LEVEL": "warning"}, tmp_path / "services")
    try:
        await running.start({name: 1 for name in SERVICES})
        yield running
    finally:
        await running.stop()


async def test_every_metric_in_the_rules_and_the_dashboard_is_exported(
    test_region: RegionUnderTest, services: ServiceSet
) -> None:
    wanted = referenced()
    assert len(wanted) > 30, "the PromQL reader found too few selectors"
    by_service: dict[str, Samples] = {}
    samples: Samples = {}

    async def scraped_all() -> bool:
        by_service.clear()
        samples.clear()
        for replica in services.replicas:
            status, body = await http_get(f"http://127.0.0.1:{replica.http_port}/metrics")
            assert status == 200, replica.label
            parse(body.decode(), by_service.setdefault(replica.service, {}))
            parse(body.decode(), samples)
        for url in broker_urls(test_region):
            status, body = await http_get(url)
            assert status == 200, url
            parse(body.decode(), samples)
        # The portal (not among the services started here) serves the default
        # registry on its /metrics: what its module creates at start is what it exports.
        portal_metrics.watch()
        parse(generate_latest().decode(), by_service.setdefault("portal", {}))
        parse(generate_latest().decode(), samples)
        return not missing(samples, wanted)

    # The heartbeat gauges appear with the first beat, just after /readyz answers.
    try:
        await eventually(scraped_all, timeout=15)
    except AssertionError:
        pytest.fail("referenced but not exported:\n" + "\n".join(missing(samples, wanted)))

    # Each service exports what it alone knows, itself.
    assert by_service["notifier"]["vi_emails_total"]
    assert by_service["retention"]["vi_retention_last_sweep_timestamp_seconds"]
    assert by_service["retention"]["vi_lead_escalations_overdue"]
    assert {"outcome": "address_refused"} in by_service["portal"]["vi_portal_logins_total"]
    for name in ("ingest", "matcher", "notifier"):
        assert {labels["service"] for labels in by_service[name]["vi_messages_total"]} == {name}
    # The heartbeat census names every running service.
    census = {labels["service"] for labels in samples["vi_replicas"]}
    assert census == set(SERVICES)


def test_the_metric_check_notices_what_is_missing() -> None:
    # A guard for the check above: a name or a label value nobody exports is reported.
    exported: Samples = {"vi_ready": [{"service": "ingest"}]}
    wanted = [
        ("x", selectors('vi_ready{service="ingest"}')[0]),
        ("x", selectors('vi_ready{service="retention"}')[0]),
        ("x", selectors("vi_nothing")[0]),
        ("x", selectors('up{job="verwijsindex"}')[0]),
        ("x", selectors('up{job="nobody"}')[0]),
    ]
    assert missing(exported, wanted) == [
        'vi_ready{service="retention"}: no series matches (x)',
        "vi_nothing: not exported (x)",
        "up: no scrape job matches (x)",
    ]
