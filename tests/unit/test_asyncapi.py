"""The AsyncAPI document: valid against the official AsyncAPI 3.0 JSON Schema, complete,
and with payload schemas that accept the contract's examples.

The official schema comes from the npm package @asyncapi/specs, which
scripts/bootstrap.sh installs into .venv; nothing is fetched while testing.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from cli.main import main as cli_main
from shared.contract.asyncapi import asyncapi_document
from shared.contract.inbound import INBOUND_TYPES, ONBOARDING_ROUTING_KEY
from shared.contract.outbound import OUTBOUND_TYPES
from tests.integration.test_ingest import CONTRACT_EXAMPLES
from tests.unit.examples import register_body

OFFICIAL_SCHEMA = (
    Path(sys.prefix) / "asyncapi-specs/node_modules/@asyncapi/specs/schemas/3.0.0.json"
)
DOCUMENT_URI = "urn:verwijsindex:asyncapi"


@cache
def _official_validator() -> Draft7Validator:
    if not OFFICIAL_SCHEMA.is_file():
        pytest.fail(f"{OFFICIAL_SCHEMA} is missing: run scripts/bootstrap.sh")
    spec = json.loads(OFFICIAL_SCHEMA.read_text(encoding="utf-8"))
    # The bundled schema carries every definition under its own $id; crawling makes
    # them resolvable without a network.
    resource = Resource.from_contents(spec, default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(spec["$id"], resource).crawl()
    return Draft7Validator(spec, registry=registry)


def _errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in _official_validator().iter_errors(document)
    ]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    # A channel's message is itself a reference into components.
    return _resolve(document, node["$ref"]) if isinstance(node, dict) and "$ref" in node else node


def test_the_document_is_valid_asyncapi_3() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    assert _errors(document) == []


def test_the_official_schema_catches_a_broken_document() -> None:
    # The validator above would pass anything if the schema's $refs did not resolve.
    document = asyncapi_document()
    document["channels"]["vi.inbound"]["bindings"]["amqp"]["exchange"]["type"] = "fan"
    document["operations"]["sendMeldingRegister"]["action"] = "publish"
    assert len(_errors(document)) >= 2


def test_every_reference_points_into_the_document() -> None:
    document = asyncapi_document()
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict | bool), ref
        assert not set(ref) & set("{} "), f"not usable as a URI fragment: {ref}"


def test_channels_carry_every_message_of_the_registries() -> None:
    document = asyncapi_document()
    channels = document["channels"]
    assert set(channels) == {"vi.inbound", "vi.outbound", "mailbox"}
    assert channels["mailbox"]["address"] == "partner.{partner_id}"
    assert list(channels["vi.inbound"]["messages"]) == list(INBOUND_TYPES)
    assert list(channels["vi.outbound"]["messages"]) == list(OUTBOUND_TYPES)
    assert list(channels["mailbox"]["messages"]) == list(OUTBOUND_TYPES)
    assert set(document["components"]["messages"]) == {*INBOUND_TYPES, *OUTBOUND_TYPES}
    routing_keys = channels["vi.inbound"]["parameters"]["routing_key"]["enum"]
    assert routing_keys == [*INBOUND_TYPES, ONBOARDING_ROUTING_KEY]


def test_amqp_bindings_name_the_exchanges_and_the_mailbox() -> None:
    channels = asyncapi_document()["channels"]
    inbound = channels["vi.inbound"]["bindings"]["amqp"]
    assert inbound["exchange"] | {"name": "vi.inbound"} == {
        "name": "vi.inbound",
        "type": "topic",
        "durable": True,
        "autoDelete": False,
    }
    assert channels["vi.outbound"]["bindings"]["amqp"]["exchange"]["type"] == "direct"
    mailbox = channels["mailbox"]["bindings"]["amqp"]
    assert mailbox["is"] == "queue" and mailbox["queue"]["name"] == "partner.{partner_id}"


def test_operations_send_every_inbound_type_and_receive_the_mailbox() -> None:
    document = asyncapi_document()
    operations = document["operations"]
    sends = {name: op for name, op in operations.items() if op["action"] == "send"}
    sent = [_resolve(document, op["messages"][0]["$ref"])["name"] for op in sends.values()]
    assert sent == list(INBOUND_TYPES)
    for op in sends.values():
        scheme = _resolve(document, op["security"][0]["$ref"])
        assert scheme["type"] == "userPassword" and "user_id" in scheme["description"]
        assert _resolve(document, op["reply"]["messages"][0]["$ref"])["name"] == "receipt"
    assert ONBOARDING_ROUTING_KEY in operations["sendMeldingRegister"]["description"]
    (receive,) = [op for op in operations.values() if op["action"] == "receive"]
    received = [_resolve(document, ref["$ref"])["name"] for ref in receive["messages"]]
    assert received == list(OUTBOUND_TYPES)


def test_headers_require_message_id_and_user_id_on_inbound() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    inbound = _resolve(document, messages["melding.register"]["headers"]["$ref"])
    assert inbound["required"] == ["message_id", "user_id"]
    assert inbound["properties"]["message_id"]["maxLength"] == 128
    assert messages["receipt"]["correlationId"]["location"] == "$message.header#/correlation_id"


def test_inbound_headers_describe_the_portal_channel() -> None:
    document = asyncapi_document()
    messages = document["components"]["messages"]
    inbound = _resolve(document, messages["melding.register"]["headers"]["$ref"])
    headers = inbound["properties"]["headers"]["properties"]
    assert set(headers) == {"x-vi-on-behalf-of", "x-vi-coordinator", "x-vi-actor"}
    assert headers["x-vi-coordinator"]["pattern"] == "^[0-9]{4}$"
    assert headers["x-vi-actor"]["maxLength"] == 128
    assert "partner.portal" in inbound["properties"]["headers"]["description"]
    assign = document["operations"]["sendRegieAssign"]
    assert "x-vi-coordinator" in assign["description"]


def _payload_validator(document: dict[str, Any], message_type: str) -> Draft7Validator:
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT7)
    )
    payload_ref = document["components"]["messages"][message_type]["payload"]["$ref"]
    return Draft7Validator({"$ref": DOCUMENT_URI + payload_ref}, registry=registry)


def test_payload_schemas_accept_the_contract_examples_and_refuse_bad_ones() -> None:
    document = asyncapi_document()
    for example in CONTRACT_EXAMPLES:
        validator = _payload_validator(document, example["type"])
        assert [e.message for e in validator.iter_errors(example)] == [], example["type"]
    register = _payload_validator(document, "melding.register")
    assert not register.is_valid(register_body(youth={"birth_date": "2014-05-01"}))
    assert not register.is_valid(register_body(extra="field"))


def test_schema_export_writes_asyncapi_yaml_beside_the_json_schemas(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_main, ["schema", "export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    path = tmp_path / "asyncapi.yaml"
    assert str(path) in result.output
    assert (tmp_path / "melding.register.schema.json").is_file()
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written == asyncapi_document()
    assert _errors(written) == []
