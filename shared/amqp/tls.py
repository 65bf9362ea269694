"""TLS for broker connections: the client side of AMQPS.

One context for services, the CLI and partner clients alike: TLS 1.2 or newer, the
broker's certificate checked against a CA and its host name, and optionally a client
certificate for a certificate login (SASL EXTERNAL).
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsSettingsError(ValueError):
    """A CA, certificate or key file that cannot be used; the message names it."""


def client_context(
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> ssl.SSLContext:
    """A context that verifies the broker (against `ca_file`, or the system's trust
    store when it is None) and, given `cert_file`, presents that certificate."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
        )
    except (OSError, ssl.SSLError) as exc:
        raise TlsSettingsError(f"cannot use the CA file {ca_file}: {exc}") from None
    # create_default_context already does all this; stated so that no default can
    # loosen it unnoticed.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if cert_file is not None:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSettingsError(
                f"cannot use the client certificate {cert_file} (key {key_file}): {exc}"
            ) from None
    elif key_file is not None:
        raise TlsSettingsError(f"a key file ({key_file}) was given without a certificate file")
    return context
