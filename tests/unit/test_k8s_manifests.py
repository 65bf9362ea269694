"""Offline checks of the Kubernetes manifests (deploy/k8s): every file parses, the
overlays build, the built objects pass the Kubernetes schemas, and every reference
resolves: Secrets and their keys, ConfigMaps, the Deployments KEDA scales, the queues
it watches, probe ports, disruption budgets and network policy selectors. Nothing
here needs a cluster."""

from __future__ import annotations

import ast
import copy
import inspect
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml

from services.portal import settings as portal_settings_module
from services.portal.settings import PortalSettings
from shared import settings as settings_module
from shared.amqp import topology
from shared.region.model import Login, RegionConfig, load_region_file, parse_region
from shared.settings import Settings
from testing.tls_broker import TLS_POLICY
from tests.kustomize import Manifest, build, kustomization, load_documents, pod_spec, pod_template

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
SECRETS_TEMPLATE = K8S / "secrets.template.yaml"
RABBITMQ_CONF = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
ENABLED_PLUGINS = ROOT / "deploy" / "rabbitmq" / "enabled_plugins"
COMPOSE = ROOT / "docker-compose.yml"

SERVICES = ("ingest", "matcher", "notifier", "retention", "portal")
# The portal's own Secrets: its broker certificate, and the HTTPS certificate of its
# Ingress.
PORTAL_TLS = "verwijsindex-portal-tls"
PORTAL_INGRESS_TLS = "verwijsindex-portal-ingress-tls"
# Where the ingress controller runs (network-policies.yaml): the only way to the pages.
INGRESS_NAMESPACE = "ingress-nginx"
# Kubernetes version whose schemas the objects must pass (PDB policy/v1, NetworkPolicy
# endPort: 1.25 and newer).
KUBERNETES_VERSION = "1.30"
# Read by the PostgreSQL driver (libpq's name), not by shared/settings.py: the database
# password stays out of VI_DATABASE_URL.
DRIVER_ENV = {"PGPASSWORD"}
# The operators' API groups; the Kubernetes schemas do not know them.
OPERATOR_API_GROUPS = {"rabbitmq.com", "postgresql.cnpg.io", "keda.sh"}
# Plugins the RabbitMQ Cluster Operator enables on every cluster.
OPERATOR_PLUGINS = {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_peer_discovery_k8s"}
# Settings of rabbitmq.conf the operator writes itself (paths, listeners, ports) or
# that concern only the compose container.
OPERATOR_OWNED_CONF = re.compile(
    r"^(load_definitions|listeners\.|management\.tcp|prometheus\.tcp|ssl_options\.(cacertfile|certfile|keyfile|verify)$|log\.)"
)


def _yaml_files() -> list[Path]:
    return sorted(K8S.rglob("*.yaml"))


def _by_kind(objects: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _one(objects: list[Manifest], kind: str) -> Manifest:
    (obj,) = _by_kind(objects, kind).values()
    return obj


def _containers(obj: Manifest) -> list[Manifest]:
    spec = pod_spec(obj)
    return [] if spec is None else list(spec["containers"])


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are checked"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@pytest.fixture(scope="module", params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def objects(request: pytest.FixtureRequest) -> list[Manifest]:
    built: list[Manifest] = build(request.param)
    return built


@pytest.fixture(scope="module")
def secret_keys() -> dict[str, set[str]]:
    """The Secrets the template documents, with their keys."""
    return {
        doc["metadata"]["name"]: set(doc["stringData"])
        for doc in load_documents(SECRETS_TEMPLATE)
        if doc["kind"] == "Secret"
    }


def _operator_secrets(objects: list[Manifest]) -> dict[str, set[str]]:
    """Secrets an operator makes: CloudNativePG's CA of each Cluster."""
    return {f"{name}-ca": {"ca.crt"} for name in _by_kind(objects, "Cluster")}


def _env(objects: list[Manifest], container: Manifest) -> dict[str, str]:
    """A container's environment; values from Secrets stand in as `secret:NAME/KEY`."""
    config_maps = _by_kind(objects, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


def _service_env(objects: list[Manifest], name: str) -> dict[str, str]:
    (container,) = _containers(_by_kind(objects, "Deployment")[name])
    return _env(objects, container)


def _region(objects: list[Manifest]) -> RegionConfig:
    """The region file the setup job applies (the ConfigMap the overlay generates)."""
    text = _by_kind(objects, "ConfigMap")["verwijsindex-region"]["data"]["region.toml"]
    return parse_region(tomllib.loads(text))


def _portal_port_problems(objects: list[Manifest]) -> list[str]:
    """Why a browser would not reach the portal's pages: VI_PORTAL_PORT against the
    container's `web` port, the health port, the Service, the Ingress and the network
    policy. Empty when every link holds."""
    problems = []
    deployment = _by_kind(objects, "Deployment")["portal"]
    (container,) = _containers(deployment)
    env = _env(objects, container)
    settings = PortalSettings.from_env(env)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if settings.port != ports.get("web"):
        problems.append(f"VI_PORTAL_PORT {settings.port} is not the web port {ports.get('web')}")
    if settings.port == Settings.from_env(env).http_port:
        problems.append("VI_PORTAL_PORT is the health port VI_HTTP_PORT")
    if settings.host != "0.0.0.0":  # noqa: S104 (a pod listens on its own address)
        problems.append("VI_PORTAL_HOST does not listen beyond the pod")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    services = {
        name: service
        for name, service in _by_kind(objects, "Service").items()
        if _selects({"matchLabels": service["spec"]["selector"]}, labels)
    }
    if not services:
        problems.append("no Service selects the portal's pods")
    for name, service in services.items():
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            if ports.get(target, target) != settings.port:
                problems.append(f"Service {name} port {port['name']} misses the web port")
    for name, ingress in _by_kind(objects, "Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                if backend["name"] not in services:
                    problems.append(f"Ingress {name} names no Service of the portal")
                    continue
                wanted = backend["port"]
                service_ports = services[backend["name"]]["spec"]["ports"]
                by_name = {p["name"]: p for p in service_ports}
                by_number = {p["port"]: p for p in service_ports}
                if wanted.get("name") not in by_name and wanted.get("number") not in by_number:
                    problems.append(f"Ingress {name} names no port of Service {backend['name']}")
    if _sources(objects, "portal", settings.port) != {f"ns:{INGRESS_NAMESPACE}"}:
        problems.append("the web port is not open to the ingress controller (only)")
    return problems


# Where each certificate setting must point: (Secret, key).
_TLS_FILES = {
    "VI_AMQP_CA_FILE": ("verwijsindex-services-tls", "ca.crt"),
    "VI_AMQP_CERT_FILE": ("verwijsindex-services-tls", "tls.crt"),
    "VI_AMQP_KEY_FILE": ("verwijsindex-services-tls", "tls.key"),
    "VI_PORTAL_AMQP_CERT_FILE": (PORTAL_TLS, "tls.crt"),
    "VI_PORTAL_AMQP_KEY_FILE": (PORTAL_TLS, "tls.key"),
}


def _tls_file_problems(objects: list[Manifest]) -> list[str]:
    """Certificate settings whose file is not mounted from the right Secret and key.
    The portal's settings are required in the portal's container only."""
    problems = []
    for obj in objects:
        for container in _containers(obj):
            env = _env(objects, container)
            files = _mounted_files(obj, container)
            for var, expected in _TLS_FILES.items():
                if var not in env:
                    if not var.startswith("VI_PORTAL_") or obj["metadata"]["name"] == "portal":
                        problems.append(f"{obj['metadata']['name']}: {var} is not set")
                    continue
                if _file_source(files, env[var]) != expected:
                    problems.append(f"{obj['metadata']['name']}: {var} is not {expected}")
    return problems


# --------------------------------------------------------------------------- files


class TestFiles:
    def test_every_file_parses_into_named_objects(self) -> None:
        files = _yaml_files()
        assert len(files) >= 10
        for path in files:
            docs = load_documents(path)
            assert docs, path
            for doc in docs:
                assert {"apiVersion", "kind"} <= set(doc), path
                if doc["kind"] != "Kustomization":
                    assert doc["metadata"]["name"], path

    def test_kustomization_resources_exist(self) -> None:
        for directory in [BASE, *OVERLAYS]:
            spec = kustomization(directory)
            for entry in spec["resources"]:
                assert (directory / entry).exists(), f"{directory}: {entry}"
            for generator in spec.get("configMapGenerator", []):
                for entry in generator["files"]:
                    assert (directory / entry.rpartition("=")[2]).is_file(), entry

    def test_every_base_file_is_a_resource(self) -> None:
        listed = set(kustomization(BASE)["resources"])
        files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
        assert files == listed

    def test_there_is_an_overlay(self) -> None:
        assert "region-demo" in [p.name for p in OVERLAYS]

    def test_the_secrets_template_is_not_built(self, objects: list[Manifest]) -> None:
        assert not _by_kind(objects, "Secret"), "Secrets are referenced, never defined"
        for doc in load_documents(SECRETS_TEMPLATE):
            for key, value in doc["stringData"].items():
                # No value to copy by mistake: placeholders, and the fixed user names.
                assert "<" in value or key == "username", (doc["metadata"]["name"], key)

    @pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
    @pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
    def test_the_python_build_equals_kubectl_kustomize(self, overlay: Path) -> None:
        out = subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            ["kubectl", "kustomize", str(overlay)],  # noqa: S607 (kubectl from PATH)
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        by_kubectl = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
        ours = {(d["kind"], d["metadata"]["name"]): d for d in build(overlay)}
        assert set(by_kubectl) == set(ours)
        for key, obj in ours.items():
            assert obj == by_kubectl[key], key


# ------------------------------------------------------------------------- schemas


class TestSchemas:
    def test_core_objects_pass_the_strict_kubernetes_schemas(self, objects: list[Manifest]) -> None:
        checked = 0
        for obj in objects:
            if obj["apiVersion"].partition("/")[0] in OPERATOR_API_GROUPS:
                continue  # an operator's resource: checked field by field below
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        assert checked >= 12

    def test_the_schema_check_catches_a_misspelled_field(self, objects: list[Manifest]) -> None:
        deployment = copy.deepcopy(_by_kind(objects, "Deployment")["ingest"])
        deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------------- backends


def _conf_lines(text: str) -> dict[str, str]:
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def _compose_image(service: str) -> str:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    image: str = compose["services"][service]["image"]
    return image


class TestRabbitmqCluster:
    def test_three_nodes_of_the_compose_version(self, objects: list[Manifest]) -> None:
        spec = _one(objects, "RabbitmqCluster")["spec"]
        assert spec["replicas"] == 3
        assert spec["image"] == _compose_image("rabbitmq")

    def test_config_is_the_compose_brokers(self, objects: list[Manifest]) -> None:
        """Every setting of deploy/rabbitmq/rabbitmq.conf that the operator does not
        write itself, with the same value."""
        spec = _one(objects, "RabbitmqCluster")["spec"]
        ours = _conf_lines(spec["rabbitmq"]["additionalConfig"])
        compose = {
            k: v
            for k, v in _conf_lines(RABBITMQ_CONF.read_text(encoding="utf-8")).items()
            if not OPERATOR_OWNED_CONF.match(k)
        }
        assert ours == compose

    def test_tls_policy_is_the_tested_one(self, objects: list[Manifest]) -> None:
        spec = _one(objects, "RabbitmqCluster")["spec"]
        ours = _conf_lines(spec["rabbitmq"]["additionalConfig"])
        # The operator sets ssl_options.verify = verify_peer when a CA is given.
        assert spec["tls"]["caSecretName"]
        policy = {k: v for k, v in TLS_POLICY.items() if k != "ssl_options.verify"}
        assert {k: ours.get(k) for k in policy} == policy

    def test_plugins_are_the_compose_brokers(self, objects: list[Manifest]) -> None:
        spec = _one(objects, "RabbitmqCluster")["spec"]
        text = ENABLED_PLUGINS.read_text(encoding="utf-8").strip()
        compose = {p.strip() for p in text[1:-2].split(",")}
        assert set(spec["rabbitmq"]["additionalPlugins"]) == compose - OPERATOR_PLUGINS

    def test_the_service_user_is_an_administrator_everywhere(self, objects: list[Manifest]) -> None:
        cluster = _one(objects, "RabbitmqCluster")["metadata"]["name"]
        user = _one(objects, "User")
        permission = _one(objects, "Permission")
        assert user["spec"]["tags"] == ["administrator"]
        assert permission["spec"]["user"] == user["metadata"]["name"]
        assert permission["spec"]["permissions"] == {"configure": ".*", "write": ".*", "read": ".*"}
        for obj in (user, permission):
            assert obj["spec"]["rabbitmqClusterReference"] == {"name": cluster}


class TestPostgresCluster:
    def test_three_instances_with_synchronous_replication(self, objects: list[Manifest]) -> None:
        spec = _one(objects, "Cluster")["spec"]
        assert spec["instances"] == 3
        sync = spec["postgresql"]["synchronous"]
        assert sync["method"] in {"any", "first"}
        assert 1 <= sync["number"] < spec["instances"]
        assert sync["dataDurability"] == "required"
        assert spec["affinity"]["podAntiAffinityType"] == "required"

    def test_postgres_version_is_the_compose_one(self, objects: list[Manifest]) -> None:
        spec = _one(objects, "Cluster")["spec"]
        assert spec["imageName"].rpartition(":")[2] == _compose_image("postgres").rpartition(":")[2]

    def test_database_and_owner_are_those_the_services_use(self, objects: list[Manifest]) -> None:
        initdb = _one(objects, "Cluster")["spec"]["bootstrap"]["initdb"]
        url = urlsplit(_service_env(objects, "matcher")["VI_DATABASE_URL"])
        assert initdb["database"] == url.path.lstrip("/")
        assert initdb["owner"] == url.username

    def test_connections_at_the_scaling_maxima_fit(self, objects: list[Manifest]) -> None:
        """Every process at its maximum, plus the setup job, times its pool."""
        max_connections = int(
            _one(objects, "Cluster")["spec"]["postgresql"]["parameters"]["max_connections"]
        )
        scaled = {
            so["spec"]["scaleTargetRef"]["name"]: so
            for so in _by_kind(objects, "ScaledObject").values()
        }
        processes = 1  # the setup job
        for name, deployment in _by_kind(objects, "Deployment").items():
            processes += (
                scaled[name]["spec"]["maxReplicaCount"]
                if name in scaled
                else deployment["spec"]["replicas"]
            )
        pools = {int(_service_env(objects, name)["VI_DB_POOL_SIZE"]) for name in SERVICES}
        assert len(pools) == 1
        # Room left for operators' CLI sessions and the CloudNativePG superuser.
        assert processes * pools.pop() <= max_connections * 0.6


# -------------------------------------------------------------------- deployments


class TestDeployments:
    def test_one_per_service_running_it(self, objects: list[Manifest]) -> None:
        deployments = _by_kind(objects, "Deployment")
        assert set(deployments) == set(SERVICES)
        for name, deployment in deployments.items():
            (container,) = _containers(deployment)
            assert container["command"] == ["python", "-m", f"services.{name}"]

    def test_image_is_the_one_the_job_runs(self, objects: list[Manifest]) -> None:
        images = {c["image"] for o in objects for c in _containers(o)}
        assert len(images) == 1
        (image,) = images
        assert re.fullmatch(r"\S+/verwijsindex:\d+\.\d+\.\d+", image), image

    def test_probes_hit_the_health_port(self, objects: list[Manifest]) -> None:
        for name in SERVICES:
            (container,) = _containers(_by_kind(objects, "Deployment")[name])
            port = int(_service_env(objects, name)["VI_HTTP_PORT"])
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                get = container[probe]["httpGet"]
                assert get["path"] == path, (name, probe)
                assert ports.get(get["port"], get["port"]) == port, (name, probe)

    def test_resources_are_requested_and_limited(self, objects: list[Manifest]) -> None:
        for obj in objects:
            for container in _containers(obj):
                resources = container["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), obj["metadata"]["name"]
                assert {"cpu", "memory"} <= set(resources["limits"]), obj["metadata"]["name"]

    def test_the_portal_pages_are_on_their_own_port_end_to_end(
        self, objects: list[Manifest]
    ) -> None:
        assert _portal_port_problems(objects) == []

    def test_a_wrong_portal_port_is_caught(self, objects: list[Manifest]) -> None:
        # The portal's own default, 8080, is the health port in the cluster.
        on_health_port = copy.deepcopy(objects)
        _by_kind(on_health_port, "ConfigMap")["verwijsindex-portal-env"]["data"].pop(
            "VI_PORTAL_PORT"
        )
        assert "VI_PORTAL_PORT is the health port VI_HTTP_PORT" in _portal_port_problems(
            on_health_port
        )
        moved_container = copy.deepcopy(objects)
        (container,) = _containers(_by_kind(moved_container, "Deployment")["portal"])
        (web,) = [p for p in container["ports"] if p["name"] == "web"]
        web["containerPort"] = 8001
        assert _portal_port_problems(moved_container)
        wrong_backend = copy.deepcopy(objects)
        if _by_kind(wrong_backend, "Ingress"):
            ingress = _by_kind(wrong_backend, "Ingress")["portal"]
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
                "name": "http"
            }
            assert _portal_port_problems(wrong_backend) == [
                "Ingress portal names no port of Service portal"
            ]

    def test_selectors_match_their_pods(self, objects: list[Manifest]) -> None:
        for deployment in _by_kind(objects, "Deployment").values():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert _selects(deployment["spec"]["selector"], labels)

    def test_every_deployment_has_a_disruption_budget_that_lets_a_drain_through(
        self, objects: list[Manifest]
    ) -> None:
        budgets = list(_by_kind(objects, "PodDisruptionBudget").values())
        for name, deployment in _by_kind(objects, "Deployment").items():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            (budget,) = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
            if "minAvailable" in budget["spec"]:
                assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"], name
            else:
                assert budget["spec"]["maxUnavailable"] >= 1, name
            # It selects this Deployment's pods and no other's.
            others = [
                d
                for d in _by_kind(objects, "Deployment").values()
                if d is not deployment
                and _selects(
                    budget["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]
                )
            ]
            assert not others, name


# -------------------------------------------------------------------- environment


class TestEnvironment:
    def test_only_variables_the_settings_read(self, objects: list[Manifest]) -> None:
        read = {
            name
            for module in (settings_module, portal_settings_module)
            for name in re.findall(r'"(VI_[A-Z_]+)"', inspect.getsource(module))
        }
        for obj in objects:
            for container in _containers(obj):
                names = set(_env(objects, container))
                assert names - read <= DRIVER_ENV, (obj["metadata"]["name"], names - read)

    def test_the_settings_parse(self, objects: list[Manifest]) -> None:
        for obj in objects:
            for container in _containers(obj):
                settings = Settings.from_env(_env(objects, container))
                assert settings.http_port == 8080
                assert settings.service_broker_user == _one(objects, "User")["metadata"]["name"]
                assert not settings.uses_dev_key

    def test_amqp_url_lists_every_broker_node(self, objects: list[Manifest]) -> None:
        cluster = _one(objects, "RabbitmqCluster")
        name = cluster["metadata"]["name"]
        urls = [urlsplit(u) for u in _service_env(objects, "ingest")["VI_AMQP_URL"].split(",")]
        assert [u.hostname for u in urls] == [
            f"{name}-server-{i}.{name}-nodes" for i in range(cluster["spec"]["replicas"])
        ]
        for url in urls:
            # A certificate login over AMQPS: no password anywhere in the URL.
            assert (url.scheme, url.port, url.password) == ("amqps", 5671, None)
            assert url.username == _one(objects, "User")["metadata"]["name"]
            assert parse_qs(url.query) == {"auth": ["external"]}

    def test_database_url_names_the_primary_and_any_instance(self, objects: list[Manifest]) -> None:
        name = _one(objects, "Cluster")["metadata"]["name"]
        raw = _service_env(objects, "ingest")["VI_DATABASE_URL"]
        url = urlsplit(raw)
        hosts = url.netloc.rpartition("@")[2].split(",")
        assert hosts == [f"{name}-rw:5432", f"{name}-r:5432"]
        assert ":" not in url.netloc.partition("@")[0], "the password comes from PGPASSWORD"
        query = parse_qs(url.query)
        assert query["target_session_attrs"] == ["read-write"]
        assert query["sslmode"] == ["verify-full"]

    def test_every_service_gets_the_same_environment(self, objects: list[Manifest]) -> None:
        base = _service_env(objects, "ingest")
        portal = set(_by_kind(objects, "ConfigMap")["verwijsindex-portal-env"]["data"])
        for name in SERVICES:
            env = _service_env(objects, name)
            extra = {"notifier": {"VI_SMTP_URL"}, "portal": portal}.get(name, set())
            assert set(env) == set(base) | extra, name
            assert {k: env[k] for k in base} == base, name
        job = _one(objects, "Job")
        (container,) = _containers(job)
        assert _env(objects, container) == base

    def test_the_portal_logs_in_to_every_node_as_its_own_broker_user(
        self, objects: list[Manifest]
    ) -> None:
        """As compose: the portal's own certificate login, the region file's [portal]
        broker_user, which `region apply` makes (login = "certificate")."""
        region = _region(objects)
        assert region.portal is not None
        assert region.portal.login is Login.CERTIFICATE
        env = _service_env(objects, "portal")
        portal_urls = [urlsplit(u) for u in env["VI_PORTAL_AMQP_URL"].split(",")]
        service_urls = [urlsplit(u) for u in env["VI_AMQP_URL"].split(",")]
        assert [u.netloc.partition("@")[2] for u in portal_urls] == [
            u.netloc.partition("@")[2] for u in service_urls
        ]
        for url in portal_urls:
            assert (url.scheme, url.port, url.password) == ("amqps", 5671, None)
            assert url.username == region.portal.broker_user
            assert url.username != _one(objects, "User")["metadata"]["name"]
            assert parse_qs(url.query) == {"auth": ["external"]}

    def test_the_portal_is_reached_over_https_at_its_ingress(self, objects: list[Manifest]) -> None:
        settings = PortalSettings.from_env(_service_env(objects, "portal"))
        assert not settings.insecure_cookies
        assert settings.cookie_prefix == "__Host-"
        url = urlsplit(settings.base_url)
        assert url.scheme == "https"
        ingresses = _by_kind(objects, "Ingress")
        if not ingresses:
            pytest.skip("this overlay reaches the portal without an Ingress")
        (ingress,) = ingresses.values()
        hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
        assert hosts == [url.hostname]
        # Every host it serves has its certificate.
        assert {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]} == set(hosts)


# ----------------------------------------------------------------- references


def _mounted_files(obj: Manifest, container: Manifest) -> dict[str, tuple[str, str]]:
    """Path of every file a container gets from a Secret volume: (secret, key)."""
    spec = pod_spec(obj)
    assert spec is not None
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        for item in secret.get("items", []):
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
        if "items" not in secret:
            files[f"{mount['mountPath']}/*"] = (secret["secretName"], "*")
    return files


def _file_source(files: dict[str, tuple[str, str]], path: str) -> tuple[str, str] | None:
    """The (Secret, key) a mounted file comes from; a file of a Secret mounted whole is
    named by its key."""
    if path in files:
        return files[path]
    directory, _, key = path.rpartition("/")
    whole = files.get(f"{directory}/*")
    return None if whole is None else (whole[0], key)


def _secret_references(objects: list[Manifest]) -> Iterator[tuple[str, str, str]]:
    """(where, secret, key) for every Secret reference; key '*' for a whole Secret."""
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        spec = pod_spec(obj)
        if spec is not None:
            for container in spec["containers"]:
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        yield where, ref["name"], ref["key"]
                for source in container.get("envFrom", []):
                    assert "secretRef" not in source, "name the keys: secretKeyRef"
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    keys = [i["key"] for i in volume["secret"].get("items", [])] or ["*"]
                    for key in keys:
                        yield where, volume["secret"]["secretName"], key
        if obj["kind"] == "Ingress":
            for tls in obj["spec"]["tls"]:
                # An Ingress's certificate Secret is of type kubernetes.io/tls.
                yield where, tls["secretName"], "tls.crt"
                yield where, tls["secretName"], "tls.key"
        if obj["kind"] == "TriggerAuthentication":
            for ref in obj["spec"]["secretTargetRef"]:
                yield where, ref["name"], ref["key"]
        if obj["kind"] == "RabbitmqCluster":
            yield where, obj["spec"]["tls"]["secretName"], "tls.crt"
            yield where, obj["spec"]["tls"]["secretName"], "tls.key"
            yield where, obj["spec"]["tls"]["caSecretName"], "ca.crt"
        if obj["kind"] == "User":
            for key in ("username", "password"):
                yield where, obj["spec"]["importCredentialsSecret"]["name"], key
        if obj["kind"] == "Cluster":
            for key in ("username", "password"):
                yield where, obj["spec"]["bootstrap"]["initdb"]["secret"]["name"], key


def _secret_reference_problems(
    objects: list[Manifest], secret_keys: dict[str, set[str]]
) -> list[str]:
    known = {**secret_keys, **_operator_secrets(objects)}
    problems = []
    for where, secret, key in _secret_references(objects):
        if secret not in known:
            problems.append(f"{where}: Secret {secret} is in no template")
        elif key != "*" and key not in known[secret]:
            problems.append(f"{where}: {secret} has no key {key}")
    return problems


def _portal_volume(objects: list[Manifest], secret: str) -> Manifest:
    spec = pod_spec(_by_kind(objects, "Deployment")["portal"])
    assert spec is not None
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
    found: Manifest = volume
    return found


class TestReferences:
    def test_every_secret_reference_is_documented(
        self, objects: list[Manifest], secret_keys: dict[str, set[str]]
    ) -> None:
        assert len(list(_secret_references(objects))) >= 20
        assert _secret_reference_problems(objects, secret_keys) == []

    def test_the_portal_uses_its_own_secrets(self, objects: list[Manifest]) -> None:
        used = {(where, secret) for where, secret, _ in _secret_references(objects)}
        assert ("Deployment/portal", PORTAL_TLS) in used
        assert ("Ingress/portal", PORTAL_INGRESS_TLS) in used
        # No other pod gets the portal's broker certificate.
        assert {where for where, secret in used if secret == PORTAL_TLS} == {"Deployment/portal"}

    def test_a_wrong_secret_key_is_caught(
        self, objects: list[Manifest], secret_keys: dict[str, set[str]]
    ) -> None:
        wrong_item = copy.deepcopy(objects)
        _portal_volume(wrong_item, PORTAL_TLS)["secret"]["items"][0]["key"] = "cert.pem"
        assert _secret_reference_problems(wrong_item, secret_keys) == [
            f"Deployment/portal: {PORTAL_TLS} has no key cert.pem"
        ]
        wrong_env = copy.deepcopy(objects)
        (container,) = _containers(_by_kind(wrong_env, "Deployment")["portal"])
        container["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "pseudonym_key"
        assert _secret_reference_problems(wrong_env, secret_keys) == [
            "Deployment/portal: verwijsindex-secrets has no key pseudonym_key"
        ]
        wrong_ingress = copy.deepcopy(objects)
        _by_kind(wrong_ingress, "Ingress")["portal"]["spec"]["tls"][0]["secretName"] = "portal-tls"
        assert len(_secret_reference_problems(wrong_ingress, secret_keys)) == 2

    def test_every_documented_secret_is_used(
        self, objects: list[Manifest], secret_keys: dict[str, set[str]]
    ) -> None:
        used = {(secret, key) for _, secret, key in _secret_references(objects)}
        for secret, keys in secret_keys.items():
            for key in keys:
                assert (secret, key) in used or (secret, "*") in used, (secret, key)

    def test_credentials_in_secrets_agree(
        self, objects: list[Manifest], secret_keys: dict[str, set[str]]
    ) -> None:
        """The broker user the operator makes is the one the URLs name; the database
        login is the owner the URL names."""
        docs = {d["metadata"]["name"]: d for d in load_documents(SECRETS_TEMPLATE)}
        user = _one(objects, "User")
        imported = docs[user["spec"]["importCredentialsSecret"]["name"]]
        # The Messaging Topology Operator reads only Secrets with its label.
        assert imported["metadata"]["labels"] == {"rabbitmq.com/topology-operator": "true"}
        admin = imported["stringData"]
        assert admin["username"] == user["metadata"]["name"]
        management = urlsplit(docs["verwijsindex-secrets"]["stringData"]["management-url"])
        assert management.username == admin["username"]
        assert management.hostname == _one(objects, "RabbitmqCluster")["metadata"]["name"]
        assert management.port == 15672 and management.path == "/"
        initdb = _one(objects, "Cluster")["spec"]["bootstrap"]["initdb"]
        assert docs[initdb["secret"]["name"]]["stringData"]["username"] == initdb["owner"]
        assert docs[initdb["secret"]["name"]]["type"] == "kubernetes.io/basic-auth"

    def test_certificate_and_ca_paths_are_mounted(self, objects: list[Manifest]) -> None:
        assert _tls_file_problems(objects) == []
        db_ca = f"{_one(objects, 'Cluster')['metadata']['name']}-ca"
        for obj in objects:
            for container in _containers(obj):
                env = _env(objects, container)
                files = _mounted_files(obj, container)
                root_cert = parse_qs(urlsplit(env["VI_DATABASE_URL"]).query)["sslrootcert"][0]
                assert files[root_cert] == (db_ca, "ca.crt")

    def test_a_certificate_setting_pointing_elsewhere_is_caught(
        self, objects: list[Manifest]
    ) -> None:
        key_as_cert = copy.deepcopy(objects)
        data = _by_kind(key_as_cert, "ConfigMap")["verwijsindex-portal-env"]["data"]
        data["VI_PORTAL_AMQP_CERT_FILE"] = data["VI_PORTAL_AMQP_KEY_FILE"]
        assert _tls_file_problems(key_as_cert) == [
            f"portal: VI_PORTAL_AMQP_CERT_FILE is not ('{PORTAL_TLS}', 'tls.crt')"
        ]
        # The services' certificate in place of the portal's: the wrong login.
        services_cert = copy.deepcopy(objects)
        data = _by_kind(services_cert, "ConfigMap")["verwijsindex-portal-env"]["data"]
        data["VI_PORTAL_AMQP_CERT_FILE"] = "/run/vi-tls/tls.crt"
        assert len(_tls_file_problems(services_cert)) == 1

    def test_every_config_map_reference_resolves(self, objects: list[Manifest]) -> None:
        config_maps = _by_kind(objects, "ConfigMap")
        for obj in objects:
            spec = pod_spec(obj)
            if spec is None:
                continue
            for container in spec["containers"]:
                for source in container.get("envFrom", []):
                    assert source["configMapRef"]["name"] in config_maps
            for volume in spec.get("volumes", []):
                if "configMap" in volume:
                    data = config_maps[volume["configMap"]["name"]]["data"]
                    for item in volume["configMap"]["items"]:
                        assert item["key"] in data

    def test_the_setup_job_migrates_and_applies_the_mounted_region(
        self, objects: list[Manifest], tmp_path: Path
    ) -> None:
        job = _one(objects, "Job")
        (container,) = _containers(job)
        script = container["command"][-1]
        assert script.startswith("verwijsindex db upgrade && verwijsindex region apply ")
        region_path = script.rpartition(" ")[2]
        spec = pod_spec(job)
        assert spec is not None and spec["restartPolicy"] == "OnFailure"
        volumes = {v["name"]: v for v in spec["volumes"]}
        (mount,) = [
            m for m in container["volumeMounts"] if region_path.startswith(m["mountPath"] + "/")
        ]
        config_map = volumes[mount["name"]]["configMap"]
        (item,) = [i for i in config_map["items"] if region_path.endswith("/" + i["path"])]
        # The region file in the ConfigMap is a valid region.
        text = _by_kind(objects, "ConfigMap")[config_map["name"]]["data"][item["key"]]
        (tmp_path / "region.toml").write_text(text, encoding="utf-8")
        region = load_region_file(tmp_path / "region.toml")
        assert region.partner


# ------------------------------------------------------------------------- KEDA


def _consumed_queues(service: str) -> set[str]:
    """The work queues a service's app.py consumes, from the topology names it imports."""
    source = (ROOT / "services" / service / "app.py").read_text(encoding="utf-8")
    names = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "shared.amqp.topology"
        for alias in node.names
    }
    return {getattr(topology, n) for n in names if n.endswith("_QUEUE")}


class TestScaling:
    def test_each_consuming_service_scales_on_its_own_queues(self, objects: list[Manifest]) -> None:
        scaled = {
            so["spec"]["scaleTargetRef"]["name"]: so
            for so in _by_kind(objects, "ScaledObject").values()
        }
        consuming = {name for name in SERVICES if _consumed_queues(name)}
        assert consuming == {"ingest", "matcher", "notifier"}
        assert set(scaled) == consuming, "retention consumes no queue and is not scaled"
        for name, scaled_object in scaled.items():
            queues = {t["metadata"]["queueName"] for t in scaled_object["spec"]["triggers"]}
            assert queues == _consumed_queues(name), name
            assert queues <= set(topology.WORK_QUEUES)

    def test_triggers_count_queue_length_through_the_management_api(
        self, objects: list[Manifest]
    ) -> None:
        auths = _by_kind(objects, "TriggerAuthentication")
        for scaled_object in _by_kind(objects, "ScaledObject").values():
            for trigger in scaled_object["spec"]["triggers"]:
                assert trigger["type"] == "rabbitmq"
                meta = trigger["metadata"]
                assert (meta["mode"], meta["protocol"], meta["vhostName"]) == (
                    "QueueLength",
                    "http",
                    "/",
                )
                assert int(meta["value"]) > 0
                assert "host" not in meta, "the management URL holds a password: a Secret"
                (param,) = auths[trigger["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
                assert param["parameter"] == "host"

    def test_the_portal_consumes_no_work_queue_and_is_not_scaled(
        self, objects: list[Manifest]
    ) -> None:
        """It reads partner mailboxes (portal.yaml says why two fixed replicas)."""
        imported = set()
        for path in (ROOT / "services" / "portal").rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "shared.amqp.topology":
                    imported |= {alias.name for alias in node.names}
        assert "partner_queue" in imported
        assert not {getattr(topology, n) for n in imported} & set(topology.WORK_QUEUES)
        targets = {
            so["spec"]["scaleTargetRef"]["name"]
            for so in _by_kind(objects, "ScaledObject").values()
        }
        assert "portal" not in targets
        assert _by_kind(objects, "Deployment")["portal"]["spec"]["replicas"] == 2

    def test_replica_bounds(self, objects: list[Manifest]) -> None:
        deployments = _by_kind(objects, "Deployment")
        for scaled_object in _by_kind(objects, "ScaledObject").values():
            spec = scaled_object["spec"]
            deployment = deployments[spec["scaleTargetRef"]["name"]]
            # Two at least: one may go with its node and the queue keeps a consumer.
            assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
            assert deployment["spec"]["replicas"] == spec["minReplicaCount"]


# ------------------------------------------------------------- network policies


def _pods(objects: list[Manifest]) -> dict[str, dict[str, str]]:
    """The labels of every kind of pod in the region: ours from their templates, the
    operators' as the operators label them."""
    pods = {}
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            pods[obj["metadata"]["name"]] = dict(template["metadata"]["labels"])
    for name in _by_kind(objects, "RabbitmqCluster"):
        pods[name] = {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq",
        }
    for name in _by_kind(objects, "Cluster"):
        pods[name] = {"cnpg.io/cluster": name}
    return pods


def _sources(objects: list[Manifest], target: str, port: int) -> set[str] | None:
    """Pods and namespaces (`ns:NAME`) that may reach `port` of the `target` pods;
    None when anyone may."""
    pods = _pods(objects)
    sources: set[str] = set()
    for policy in _by_kind(objects, "NetworkPolicy").values():
        if not _selects(policy["spec"]["podSelector"], pods[target]):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports", [])
            if not any(p["port"] <= port <= p.get("endPort", p["port"]) for p in ports):
                continue
            if "from" not in rule:
                return None
            for peer in rule["from"]:
                if "podSelector" in peer:
                    sources |= {
                        n for n, labels in pods.items() if _selects(peer["podSelector"], labels)
                    }
                else:
                    sources.add(
                        "ns:"
                        + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                    )
    return sources


class TestNetworkPolicies:
    def test_every_selector_selects_real_pods(self, objects: list[Manifest]) -> None:
        pods = _pods(objects)
        for policy in _by_kind(objects, "NetworkPolicy").values():
            assert policy["spec"]["policyTypes"] == ["Ingress"]
            assert any(_selects(policy["spec"]["podSelector"], labels) for labels in pods.values())
            for rule in policy["spec"]["ingress"]:
                for peer in rule.get("from", []):
                    if "podSelector" in peer:
                        assert any(
                            _selects(peer["podSelector"], labels) for labels in pods.values()
                        )

    def test_only_amqps_is_exposed_outside_the_cluster(self, objects: list[Manifest]) -> None:
        pods = _pods(objects)
        services = _by_kind(objects, "Service")
        assert services
        for name, service in services.items():
            selected = [
                p
                for p, labels in pods.items()
                if _selects({"matchLabels": service["spec"]["selector"]}, labels)
            ]
            assert selected, name
            if service["spec"].get("type") in {"LoadBalancer", "NodePort"}:
                assert selected == [_one(objects, "RabbitmqCluster")["metadata"]["name"]]
                assert [p["port"] for p in service["spec"]["ports"]] == [5671], name

    def test_only_our_pods_reach_the_database(self, objects: list[Manifest]) -> None:
        db = _one(objects, "Cluster")["metadata"]["name"]
        ours = set(SERVICES) | {_one(objects, "Job")["metadata"]["name"]}
        # The instances replicate among themselves.
        assert _sources(objects, db, 5432) == ours | {db}

    def test_only_our_pods_keda_and_the_topology_operator_reach_the_management_api(
        self, objects: list[Manifest]
    ) -> None:
        mq = _one(objects, "RabbitmqCluster")["metadata"]["name"]
        ours = set(SERVICES) | {_one(objects, "Job")["metadata"]["name"]}
        assert _sources(objects, mq, 15672) == ours | {"ns:keda", "ns:rabbitmq-system"}
        assert _sources(objects, mq, 5672) == ours
        assert _sources(objects, mq, 15671) == {"ns:rabbitmq-system"}

    def test_partners_reach_amqps(self, objects: list[Manifest]) -> None:
        mq = _one(objects, "RabbitmqCluster")["metadata"]["name"]
        assert _sources(objects, mq, 5671) is None
        # The nodes cluster among themselves only.
        for port in (4369, 25672, 35672, 35682):
            assert _sources(objects, mq, port) == {mq}

    def test_services_answer_only_prometheus(self, objects: list[Manifest]) -> None:
        for name in SERVICES:
            assert _sources(objects, name, 8080) == {"ns:monitoring"}

    def test_only_the_ingress_controller_reaches_the_portal_pages(
        self, objects: list[Manifest]
    ) -> None:
        port = PortalSettings.from_env(_service_env(objects, "portal")).port
        assert _sources(objects, "portal", port) == {f"ns:{INGRESS_NAMESPACE}"}
        # No other service opens that port.
        for name in set(SERVICES) - {"portal"}:
            assert _sources(objects, name, port) == set(), name
