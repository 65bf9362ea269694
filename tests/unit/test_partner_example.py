"""The example partner client: what it may import, and how it publishes (a retry is the
same message). Running it against the broker: tests/integration/test_partner_example.py."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "partner_client.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_partner_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_imports_only_the_standard_library_and_aio_pika() -> None:
    imported = set()
    for node in ast.walk(ast.parse(EXAMPLE.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names - {"__future__"} == {"aio_pika"}


class FlakyExchange:
    """Loses the confirm of the first `failures` publishes, then confirms."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list[tuple[aio_pika.Message, str]] = []

    async def publish(self, message: aio_pika.Message, routing_key: str, **_: Any) -> None:
        self.published.append((message, routing_key))
        if len(self.published) <= self.failures:
            raise ConnectionError("connection lost before the confirm")


class Channel:
    def __init__(self, exchange: FlakyExchange) -> None:
        self.exchange = exchange

    async def get_exchange(self, name: str, *, ensure: bool) -> FlakyExchange:
        assert (name, ensure) == ("vi.inbound", False)  # a partner may declare nothing
        return self.exchange


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_example()
    monkeypatch.setattr(module, "RETRY_PAUSE", 0.0)
    return module


async def test_a_publish_without_confirm_is_repeated_as_the_same_message(
    example: ModuleType,
) -> None:
    exchange = FlakyExchange(failures=2)
    body = {"type": "melding.register", "melding_ref": "R-1"}
    await example.publish(Channel(exchange), body, "mid-1", "school")
    assert len(exchange.published) == 3
    for message, routing_key in exchange.published:
        assert routing_key == "melding.register"
        assert message.message_id == "mid-1"
        assert message.user_id == "school"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.body == b'{"type": "melding.register", "melding_ref": "R-1"}'


async def test_it_gives_up_after_a_few_attempts_with_the_error(example: ModuleType) -> None:
    exchange = FlakyExchange(failures=100)
    with pytest.raises(ConnectionError):
        await example.publish(Channel(exchange), {"type": "regie.claim"}, "mid-2", "school")
    assert len(exchange.published) == example.PUBLISH_ATTEMPTS
