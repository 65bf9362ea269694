"""What the operator reads when a command fails: one or two lines that name the backend
or setting at fault and say what to do. (`verwijsindex --debug` shows the traceback.)

A refused connection is an OSError whichever backend refused it, so the backend is
told apart by the library the error came from.
"""

from __future__ import annotations

import aiormq.exceptions
import asyncpg

from shared.amqp.management import ManagementError
from shared.amqp.nodes import BrokerUrlError
from shared.amqp.tls import TlsSettingsError
from shared.db.migrate import MigrationFailed, SchemaOutOfDate
from shared.region.model import RegionConfigError
from shared.region.store import RegionNotApplied

# Errors of our own whose message already says what to do.
_SELF_EXPLAINING = (
    BrokerUrlError,
    SchemaOutOfDate,
    MigrationFailed,
    RegionNotApplied,
    RegionConfigError,
    ManagementError,
)

_DATABASE_URL_FORM = "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
_AMQP_URL_FORM = "amqp://USER:PASSWORD@HOST[:PORT]/[VHOST]"


def _raised_in(exc: BaseException, module: str) -> bool:
    """True if `module` (or a module inside it) is on the error's traceback."""
    tb = exc.__traceback__
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name == module or name.startswith(module + "."):
            return True
        tb = tb.tb_next
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _database(exc: Exception) -> str | None:
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (
            f"{exc} (VI_DATABASE_URL): correct the name there, or create the database "
            "with `verwijsindex db upgrade --create`"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"PostgreSQL refused the login ({exc}): check the user and password in VI_DATABASE_URL"
        )
    if isinstance(exc, ValueError) and _raised_in(exc, "asyncpg.connect_utils"):
        return (
            f"VI_DATABASE_URL is not a valid database URL ({exc}); the form is {_DATABASE_URL_FORM}"
        )
    if isinstance(exc, OSError) and _raised_in(exc, "asyncpg"):
        return (
            f"cannot reach PostgreSQL ({_reason(exc)}): is it running, and does "
            "VI_DATABASE_URL point at it?"
        )
    if isinstance(exc, asyncpg.PostgresError):
        return f"PostgreSQL answered: {exc}"
    return None


def _broker(exc: Exception) -> str | None:
    if isinstance(
        exc, aiormq.exceptions.AuthenticationError | aiormq.exceptions.ProbableAuthenticationError
    ):
        return "RabbitMQ refused the login: check the user and password in VI_AMQP_URL"
    if isinstance(exc, aiormq.exceptions.AMQPConnectionError):
        return (
            f"cannot reach RabbitMQ ({_reason(exc)}): is it running, and does VI_AMQP_URL "
            "point at it?"
        )
    if isinstance(exc, aiormq.exceptions.InvalidFrameError):
        # The broker closes a connection it will not open, most often for a virtual
        # host that does not exist or that the user has no access to.
        return (
            "RabbitMQ closed the connection as it opened: check that the virtual host in "
            "VI_AMQP_URL exists and that its user has access to it"
        )
    if isinstance(exc, aiormq.exceptions.AMQPError):
        return f"RabbitMQ answered: {exc}; check the permissions of the user in VI_AMQP_URL"
    if isinstance(exc, ValueError) and _raised_in(exc, "yarl"):
        return f"VI_AMQP_URL is not a valid broker URL ({exc}); the form is {_AMQP_URL_FORM}"
    return None


def explain(exc: Exception) -> str:
    """One or two lines for an error that ended a command."""
    if isinstance(exc, _SELF_EXPLAINING):
        return str(exc)
    if isinstance(exc, TlsSettingsError):
        return f"{exc}. Check VI_AMQP_CA_FILE, VI_AMQP_CERT_FILE and VI_AMQP_KEY_FILE."
    explained = _broker(exc) or _database(exc)
    if explained is not None:
        return explained
    return (
        f"{type(exc).__name__}: {exc}\n"
        "This is unexpected: run the command again with `verwijsindex --debug ...` "
        "for the traceback."
    )
