"""The layers of shared/index (its __init__ describes them), checked on the source:
the rules do no I/O at all, the operations reach the database only through the
storage modules, and nothing in the index knows the broker or the outbox (decisions
become messages in shared/announce.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INDEX = Path(__file__).resolve().parents[2] / "shared" / "index"
RULES = ("domain", "assignment", "family", "deadlines", "participants", "decisions")
STORAGE = ("repository", "family_store")
OPERATIONS = ("lifecycle", "retirement", "subject")
# Nothing in the index: the broker, its clients, the outbox and the announcer.
NEVER = ("aio_pika", "aiormq", "pamqp", "shared.amqp", "shared.db.outbox", "shared.announce")
# Besides that, no rule does I/O: no database driver or access of any kind.
NOT_IN_RULES = (*NEVER, "asyncpg", "shared.db")


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def offending(module: str, banned: tuple[str, ...]) -> set[str]:
    imported = imported_modules((INDEX / f"{module}.py").read_text(encoding="utf-8"))
    return {m for m in imported if any(m == b or m.startswith(f"{b}.") for b in banned)}


def test_the_layers_name_every_module_of_the_index() -> None:
    modules = {path.stem for path in INDEX.glob("*.py")} - {"__init__"}
    assert modules == {*RULES, *STORAGE, *OPERATIONS}


def test_the_scan_sees_what_a_module_imports() -> None:
    source = "import asyncpg\nfrom shared.db.pool import Conn\nfrom shared.amqp import topology\n"
    assert imported_modules(source) >= {"asyncpg", "shared.db.pool", "shared.amqp.topology"}


@pytest.mark.parametrize("module", RULES)
def test_a_rule_does_no_io(module: str) -> None:
    assert offending(module, NOT_IN_RULES) == set()


@pytest.mark.parametrize("module", STORAGE + OPERATIONS)
def test_storage_and_operations_know_neither_broker_nor_outbox(module: str) -> None:
    assert offending(module, NEVER) == set()


@pytest.mark.parametrize("module", OPERATIONS)
def test_an_operation_reaches_the_database_only_through_storage(module: str) -> None:
    # The connection it is handed (a type) and the journal are all it may take from
    # shared.db; the SQL is in the storage modules.
    allowed = {
        "shared.db.pool",
        "shared.db.pool.Conn",
        "shared.db.journal",
        "shared.db.journal.Journal",
    }
    assert offending(module, ("asyncpg", "shared.db")) - allowed == set()
    source = (INDEX / f"{module}.py").read_text(encoding="utf-8")
    assert not any(word in source for word in ("conn.execute", "conn.fetch", "SELECT ", "UPDATE "))
