"""Static checks of the deployment files: broker definitions, the Grafana dashboard,
Prometheus and the compose file. Nothing here starts a container."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.amqp.management import partner_permissions, portal_permissions
from shared.region.model import Channel, RegionConfig, load_region_file
from testing.tls_broker import TLS_POLICY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
RABBITMQ_CONF = DEPLOY / "rabbitmq" / "rabbitmq.conf"
ENABLED_PLUGINS = DEPLOY / "rabbitmq" / "enabled_plugins"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "verwijsindex.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEMO_REGION = ROOT / "region" / "demo.toml"

SERVICE_USER = "verwijsindex"
SERVICES = ("ingest", "matcher", "notifier", "retention", "portal")
PRODUCT_METRICS = (
    "vi_messages_total",
    "vi_handling_seconds_bucket",
    "vi_parked_total",
    "vi_outbox_backlog",
    "vi_retries_total",
)


def demo_password(user: str) -> str:
    """The documented demo credentials (deploy/rabbitmq/README.md): the password is
    the user name, for the service user and for every partner."""
    return user


def verify_rabbit_sha256(password_hash: str, password: str) -> bool:
    raw = base64.b64decode(password_hash, validate=True)
    salt, digest = raw[:4], raw[4:]
    expected = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return len(raw) == 36 and hmac.compare_digest(digest, expected)


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFINITIONS.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def region() -> RegionConfig:
    return load_region_file(DEMO_REGION)


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _rabbitmq_conf() -> dict[str, str]:
    settings = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def _users(definitions: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["name"]: u for u in definitions["users"]}


def _permissions(definitions: dict[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    result: dict[tuple[str, str], dict[str, str]] = {}
    for p in definitions["permissions"]:
        key = (p["user"], p["vhost"])
        assert key not in result, f"duplicate permissions for {key}"
        result[key] = {k: p[k] for k in ("configure", "write", "read")}
    return result


def _tags(user: dict[str, Any]) -> set[str]:
    tags = user["tags"]
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    return {t.strip() for t in items if t.strip()}


class TestRabbitDefinitions:
    def test_only_the_root_vhost(self, definitions: dict[str, Any]) -> None:
        assert [v["name"] for v in definitions["vhosts"]] == ["/"]

    def test_no_topology_in_definitions(self, definitions: dict[str, Any]) -> None:
        # Exchanges and queues belong to `region apply` and the services.
        for key in ("queues", "exchanges", "bindings", "policies"):
            assert not definitions.get(key), key

    def test_users_are_service_user_and_demo_partners(
        self, definitions: dict[str, Any], region: RegionConfig
    ) -> None:
        assert region.portal is not None
        expected = {SERVICE_USER, region.portal.broker_user} | {
            p.broker_user for p in region.partner if p.broker_user is not None
        }
        assert set(_users(definitions)) == expected
        assert len(definitions["users"]) == len(expected)
        assert "guest" not in _users(definitions)

    def test_hashes_verify_against_demo_passwords(self, definitions: dict[str, Any]) -> None:
        for user in definitions["users"]:
            assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
            assert verify_rabbit_sha256(user["password_hash"], demo_password(user["name"])), user[
                "name"
            ]
            assert not verify_rabbit_sha256(user["password_hash"], "guest")

    def test_salts_are_not_reused(self, definitions: dict[str, Any]) -> None:
        salts = [base64.b64decode(u["password_hash"])[:4] for u in definitions["users"]]
        assert len(set(salts)) == len(salts)

    def test_service_user_is_administrator_with_full_permissions(
        self, definitions: dict[str, Any]
    ) -> None:
        assert _tags(_users(definitions)[SERVICE_USER]) == {"administrator"}
        assert _permissions(definitions)[(SERVICE_USER, "/")] == {
            "configure": ".*",
            "write": ".*",
            "read": ".*",
        }

    def test_partners_have_exactly_the_prescribed_permissions(
        self, definitions: dict[str, Any], region: RegionConfig
    ) -> None:
        users = _users(definitions)
        permissions = _permissions(definitions)
        own_logins = [p for p in region.partner if p.channel is Channel.AMQP]
        for partner in own_logins:
            assert _tags(users[partner.own_broker_user]) == set(), partner.id
            granted = {k: v for k, v in permissions.items() if k[0] == partner.broker_user}
            assert granted == {(partner.broker_user, "/"): partner_permissions(partner.id)}
        assert len(permissions) == 2 + len(own_logins)  # + the services and the portal

    def test_portal_reads_only_its_own_and_its_partners_mailboxes(
        self, definitions: dict[str, Any], region: RegionConfig
    ) -> None:
        assert region.portal is not None
        user = region.portal.broker_user
        assert _tags(_users(definitions)[user]) == set()
        granted = _permissions(definitions)[(user, "/")]
        assert granted == portal_permissions(region.portal_mailboxes)
        readable = [q for q in region.mailboxes if re.fullmatch(granted["read"], f"partner.{q}")]
        assert readable == ["de-linde", "portal"]

    def test_partner_permissions_match_only_their_own_mailbox(
        self, definitions: dict[str, Any], region: RegionConfig
    ) -> None:
        permissions = _permissions(definitions)
        mailboxes = [f"partner.{p}" for p in region.mailboxes]
        for partner in (p for p in region.partner if p.channel is Channel.AMQP):
            granted = permissions[(partner.own_broker_user, "/")]
            readable = [q for q in mailboxes if re.fullmatch(granted["read"], q)]
            assert readable == [f"partner.{partner.id}"]
            assert re.fullmatch(granted["write"], "vi.inbound")
            for other in ("vi.outbound", "vi.internal", "vi_inbound", "amq.default", ""):
                assert not re.fullmatch(granted["write"], other), other
            for resource in ("vi.inbound", f"partner.{partner.id}", "anything"):
                assert not re.fullmatch(granted["configure"], resource)

    def test_rabbitmq_conf(self) -> None:
        settings = _rabbitmq_conf()
        assert settings["load_definitions"] == "/etc/rabbitmq/definitions.json"
        assert settings["prometheus.return_per_object_metrics"] == "true"
        assert int(settings["consumer_timeout"]) >= 60_000
        assert settings["vm_memory_high_watermark.relative"] == "0.6"

    def test_tls_listener_is_the_tested_one(self) -> None:
        """AMQPS with the policy the TLS tests run against (testing/tls_broker.py), and
        the certificate files where the compose `tls-files` job puts them."""
        settings = _rabbitmq_conf()
        assert settings["listeners.ssl.default"] == "5671"
        assert {k: settings.get(k) for k in TLS_POLICY} == TLS_POLICY
        for key, name in (("cacertfile", "ca.pem"), ("certfile", "server.pem")):
            assert settings[f"ssl_options.{key}"] == f"/etc/rabbitmq/tls/{name}"
        assert settings["ssl_options.keyfile"] == "/etc/rabbitmq/tls/server.key"

    def test_enabled_plugins(self) -> None:
        text = ENABLED_PLUGINS.read_text(encoding="utf-8").strip()
        assert re.fullmatch(r"\[[a-z_,\s]+\]\.", text)
        plugins = {p.strip() for p in text[1:-2].split(",")}
        assert plugins == {
            "rabbitmq_management",
            "rabbitmq_prometheus",
            "rabbitmq_auth_mechanism_ssl",
        }


class TestDashboard:
    def test_identity(self, dashboard: dict[str, Any]) -> None:
        assert dashboard["uid"] == "verwijsindex-pipeline"
        assert dashboard["schemaVersion"] == 39

    def test_panels_are_well_formed(self, dashboard: dict[str, Any]) -> None:
        panels = dashboard["panels"]
        assert panels
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids)
        for panel in panels:
            assert panel["type"] in {"timeseries", "stat"}
            pos = panel["gridPos"]
            assert {"x", "y", "w", "h"} <= set(pos)
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])

    def test_uses_the_product_metrics(self, dashboard: dict[str, Any]) -> None:
        exprs = "\n".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
        for metric in PRODUCT_METRICS:
            assert re.search(rf"\b{metric}\b", exprs), metric
        assert "rabbitmq_detailed_queue_messages_ready" in exprs
        assert "rabbitmq_queue_messages_ready" in exprs

    def test_datasource_is_the_provisioned_one(self, dashboard: dict[str, Any]) -> None:
        provisioned = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
        uid = re.search(r"^\s*uid:\s*(\S+)\s*$", provisioned.read_text(encoding="utf-8"), re.M)
        assert uid is not None
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid.group(1)


def _compose_images() -> list[str]:
    return re.findall(r"^\s*image:\s*[\"']?([^\s\"'#]+)", COMPOSE.read_text(encoding="utf-8"), re.M)


class TestCompose:
    def test_every_image_is_pinned(self) -> None:
        images = _compose_images()
        assert len(images) >= 6
        for image in images:
            name, sep, tag = image.rpartition(":")
            assert sep and "/" not in tag, f"{image} has no tag"
            assert tag != "latest" and re.search(r"\d", tag), image
            assert name

    def test_dockerfile_base_is_pinned(self) -> None:
        base = re.search(r"^FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
        assert base is not None
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base.group(1))

    def test_structure(self) -> None:
        yaml = pytest.importorskip("yaml")
        compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
        assert "version" not in compose
        services = compose["services"]
        replicas = {"ingest": 2, "matcher": 2, "notifier": 2, "retention": 1, "portal": 2}
        for name in SERVICES:
            service = services[name]
            assert service["command"] == ["python", "-m", f"services.{name}"]
            assert service["deploy"]["replicas"] == replicas[name]
            assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
            env = service["environment"]
            assert env["VI_AMQP_URL"] == f"amqps://{SERVICE_USER}@rabbitmq:5671/?auth=external"
            assert env["VI_AMQP_CA_FILE"] == "/run/vi-tls/ca.pem"
            assert env["VI_AMQP_CERT_FILE"] == "/run/vi-tls/services.pem"
            assert env["VI_AMQP_KEY_FILE"] == "/run/vi-tls/services.key"
            assert "services-tls:/run/vi-tls:ro" in service["volumes"]
            assert env["VI_MANAGEMENT_URL"].startswith(f"http://{SERVICE_USER}:")
            assert env["VI_HTTP_PORT"] == "8080"
            assert env["VI_SMTP_URL"] == "smtp://mailsink:1025"
            assert "VI_PSEUDONYM_KEY" in env
            assert "8080/healthz" in " ".join(service["healthcheck"]["test"])
        assert services["setup"]["restart"] == "no"
        assert "region apply /app/region/demo.toml" in " ".join(services["setup"]["command"])

    def test_certificates_come_from_secrets(self) -> None:
        yaml = pytest.importorskip("yaml")
        compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
        services = compose["services"]
        job = services["tls-files"]
        assert set(job["secrets"]) == set(compose["secrets"])
        for secret in compose["secrets"].values():
            assert secret["file"].startswith("${VI_CERTS_DIR:-./var/certs}/")
        script = job["command"][-1]
        # Each private key readable by its own process only: RabbitMQ, the services.
        assert "install -o 999 -g 999 -m 0400 amqp-server-key /broker/server.key" in script
        assert "-o 10001 -g 10001 -m 0400 amqp-services-key /services/services.key" in script
        assert "broker-tls:/etc/rabbitmq/tls:ro" in services["rabbitmq"]["volumes"]
        assert services["rabbitmq"]["depends_on"]["tls-files"] == {
            "condition": "service_completed_successfully"
        }
        assert "5671:5671" in services["rabbitmq"]["ports"]
        assert "services-tls:/run/vi-tls:ro" in services["setup"]["volumes"]

    def test_prometheus_scrapes_every_replica(self) -> None:
        yaml = pytest.importorskip("yaml")
        config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
        dns = [sd for job in config["scrape_configs"] for sd in job.get("dns_sd_configs", [])]
        names = {n for sd in dns for n in sd["names"] if sd["type"] == "A" and sd["port"] == 8080}
        assert names == set(SERVICES)
        targets = {
            t
            for job in config["scrape_configs"]
            for sc in job.get("static_configs", [])
            for t in sc["targets"]
        }
        assert "rabbitmq:15692" in targets

    def test_prometheus_loads_the_alert_rules_and_sends_to_alertmanager(self) -> None:
        yaml = pytest.importorskip("yaml")
        config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
        assert config["rule_files"] == ["alerts.yml"]  # next to prometheus.yml
        (alertmanagers,) = config["alerting"]["alertmanagers"]
        assert alertmanagers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
        services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
        mounts = services["prometheus"]["volumes"]
        assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
        assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
        assert "alertmanager" in services["prometheus"]["depends_on"]

    def test_alertmanager_runs_with_its_config(self) -> None:
        yaml = pytest.importorskip("yaml")
        services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
        alertmanager = services["alertmanager"]
        assert alertmanager["image"].startswith("prom/alertmanager:v")
        assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
        assert (
            "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"
            in alertmanager["volumes"]
        )
        assert "9093:9093" in alertmanager["ports"]
        assert "mailsink" in alertmanager["depends_on"]
