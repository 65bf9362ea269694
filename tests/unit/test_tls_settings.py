"""TLS settings, the client TLS context, the partner login kind and the demo
certificates: no broker needed."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import NameOID

from cli.demo_pki import TEST_ONLY, DemoCA
from cli.main import main
from shared.amqp.connection import broker_tls
from shared.amqp.management import Management, ManagementError
from shared.amqp.tls import TlsSettingsError, client_context
from shared.region.model import (
    Channel,
    Login,
    RegionConfigError,
    load_region_file,
    parse_region,
)
from shared.settings import Settings
from tests.support import region_document

ROOT = Path(__file__).resolve().parents[2]


def test_tls_files_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "VI_AMQP_URL": "amqps://vi@broker:5671/?auth=external",
            "VI_AMQP_CA_FILE": "/certs/ca.pem",
            "VI_AMQP_CERT_FILE": "/certs/vi.pem",
            "VI_AMQP_KEY_FILE": "/certs/vi.key",
        }
    )
    assert (s.amqp_ca_file, s.amqp_cert_file, s.amqp_key_file) == (
        Path("/certs/ca.pem"),
        Path("/certs/vi.pem"),
        Path("/certs/vi.key"),
    )
    assert s.service_broker_user == "vi"
    assert Settings.from_env({}).amqp_ca_file is None


def test_plain_amqp_uses_no_tls_and_amqps_always_verifies(tmp_path: Path) -> None:
    assert broker_tls(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672/")) is None
    ca = DemoCA()
    ca_file = ca.write(tmp_path)
    cert, key = ca.issue("vi").write(tmp_path, "vi")
    context = broker_tls(
        Settings(
            amqp_url="amqps://vi@broker/?auth=external",
            amqp_ca_file=ca_file,
            amqp_cert_file=cert,
            amqp_key_file=key,
        )
    )
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("organizationName", TEST_ONLY),), (("commonName", "Verwijsindex demo CA"),))
    ]


def test_unusable_tls_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(TlsSettingsError, match=r"CA file /nowhere/ca\.pem"):
        client_context(Path("/nowhere/ca.pem"))
    ca_file = DemoCA().write(tmp_path)
    with pytest.raises(TlsSettingsError, match="client certificate"):
        client_context(ca_file, tmp_path / "missing.pem", tmp_path / "missing.key")
    with pytest.raises(TlsSettingsError, match="without a certificate"):
        client_context(ca_file, None, tmp_path / "some.key")


@pytest.mark.parametrize(
    ("url", "cert", "complaint"),
    [
        ("amqp://vi@broker/?auth=external", "vi.pem", "needs an amqps:// URL"),
        ("amqps://vi@broker/?auth=external", None, "VI_AMQP_CERT_FILE"),
        ("amqps://broker/?auth=external", "vi.pem", "must still name the user"),
    ],
)
def test_a_certificate_login_needs_tls_a_certificate_and_a_user_name(
    url: str, cert: str | None, complaint: str
) -> None:
    settings = Settings(amqp_url=url, amqp_cert_file=Path(cert) if cert else None)
    with pytest.raises(TlsSettingsError, match=complaint):
        broker_tls(settings)


def test_the_cli_says_which_tls_setting_is_wrong() -> None:
    result = CliRunner().invoke(
        main,
        ["parked", "list"],
        env={"VI_AMQP_URL": "amqps://vi@localhost:1/", "VI_AMQP_CA_FILE": "/nowhere/ca.pem"},
    )
    assert result.exit_code == 1
    assert "cannot use the CA file /nowhere/ca.pem" in result.output
    assert "VI_AMQP_CA_FILE" in result.output


def test_a_partner_logs_in_by_password_unless_the_region_says_certificate() -> None:
    document = region_document("p")
    document["partner"][0]["login"] = "certificate"
    config = parse_region(document)
    assert [p.login for p in config.partner[:2]] == [Login.CERTIFICATE, Login.PASSWORD]
    document["partner"][0]["login"] = "smartcard"
    with pytest.raises(RegionConfigError, match=r'partner\[1\] \(id "school"\)\.login'):
        parse_region(document)


def _subject(path: Path, oid: x509.ObjectIdentifier) -> str:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return str(cert.subject.get_attributes_for_oid(oid)[0].value)


def test_demo_certs_make_a_ca_a_broker_services_and_partner_certificates(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = CliRunner().invoke(
        main, ["demo", "certs", str(out), "--region", str(ROOT / "region" / "demo.toml")]
    )
    assert result.exit_code == 0, result.output
    assert "FOR TESTING ONLY" in result.output
    region = load_region_file(ROOT / "region" / "demo.toml")
    assert region.portal is not None
    assert _subject(out / "portal.pem", NameOID.COMMON_NAME) == region.portal.broker_user
    for partner in region.partner:
        cert = out / "partners" / f"{partner.id}.pem"
        if partner.channel is Channel.PORTAL:  # the portal's login serves it
            assert not cert.exists()
            continue
        assert _subject(cert, NameOID.COMMON_NAME) == partner.broker_user
        assert _subject(cert, NameOID.ORGANIZATION_NAME) == TEST_ONLY
        assert (out / "partners" / f"{partner.id}.key").stat().st_mode & 0o077 == 0
    assert _subject(out / "services.pem", NameOID.COMMON_NAME) == "verwijsindex"
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "rabbitmq"} <= set(names.get_values_for_type(x509.DNSName))
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    for issued in [
        out / "server.pem",
        out / "services.pem",
        out / "portal.pem",
        *(out / "partners").glob("*.pem"),
    ]:
        x509.load_pem_x509_certificate(issued.read_bytes()).verify_directly_issued_by(ca)
    again = CliRunner().invoke(main, ["demo", "certs", str(out)])
    assert again.exit_code == 1
    assert "already holds demo certificates" in again.output


class _Users(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # one user, "known"
        known = self.path == "/api/users/known"
        self.send_response(200 if known else 404)
        self.end_headers()
        self.wfile.write(b'{"name": "known"}' if known else b"{}")

    def log_message(self, *_: object) -> None:
        pass


async def test_the_management_api_over_https_is_checked_against_the_ca(tmp_path: Path) -> None:
    ca = DemoCA()
    ca_file = ca.write(tmp_path)
    cert, key = ca.issue("localhost", server_names=["localhost"]).write(tmp_path, "server")
    server = HTTPServer(("127.0.0.1", 0), _Users)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"https://guest:guest@localhost:{server.server_address[1]}"
        api = Management(url, ca_file=ca_file)
        assert await api.user_exists("known")
        assert not await api.user_exists("unknown")
        with pytest.raises(ManagementError, match="CERTIFICATE_VERIFY_FAILED"):
            await Management(url, ca_file=DemoCA().write(tmp_path / "other")).user_exists("known")
    finally:
        server.shutdown()
        server.server_close()
