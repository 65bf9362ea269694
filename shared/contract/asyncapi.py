"""The AsyncAPI 3.0 document of the partner interface, generated from the contract models.

It is written by ``verwijsindex schema export DIR`` as ``asyncapi.yaml`` beside the
JSON Schemas, and it is built from the same per-message schemas
(:func:`shared.contract.schema_export.schema_for`): their ``$defs`` become
``components/schemas`` so the document stands on its own. The messages come from the
model registries (``INBOUND_TYPES`` / ``OUTBOUND_TYPES``): a new message type appears
here without an edit.

The document describes a *partner system*: it sends to ``vi.inbound`` and receives
from its mailbox ``partner.{partner_id}``, which the index fills through
``vi.outbound``.
"""

from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel

from shared.contract.inbound import INBOUND_TYPES, ONBOARDING_ROUTING_KEY
from shared.contract.outbound import OUTBOUND_TYPES
from shared.contract.portal import (
    ACTOR_HEADER,
    COORDINATOR_HEADER,
    MAX_ACTOR_CHARS,
    ON_BEHALF_OF_HEADER,
)
from shared.contract.schema_export import Direction, schema_for

ASYNCAPI_VERSION: Final = "3.0.0"
ASYNCAPI_FILE: Final = "asyncapi.yaml"
CONTRACT_VERSION: Final = "1.1"
AMQP_BINDING_VERSION: Final = "0.3.0"

INBOUND_CHANNEL: Final = "vi.inbound"
OUTBOUND_CHANNEL: Final = "vi.outbound"
# The mailbox's id is not its address: braces have no place in a "#/channels/…" ref.
MAILBOX_CHANNEL: Final = "mailbox"
MAILBOX_ADDRESS: Final = "partner.{partner_id}"

_SCHEMAS: Final = "#/components/schemas/"
_LOCAL_DEFS: Final = "#/$defs/"

_PARTNER_ID = {
    "description": (
        "Your partner id, given by the operator (for example `regenboog`): the name of "
        "your mailbox and the routing key of everything addressed to you."
    ),
    "examples": ["regenboog"],
}

_INBOUND_HEADERS: Final[dict[str, Any]] = {
    "type": "object",
    "description": (
        "AMQP basic properties of a message to `vi.inbound`. Other properties and "
        "headers are ignored; headers starting with `x-vi-` are the index's own."
    ),
    "required": ["message_id", "user_id"],
    "properties": {
        "message_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "description": (
                "Your idempotency key: printable text, unique within your organisation. "
                "The index remembers it for 45 days and answers a repeat with a "
                "`duplicate` receipt."
            ),
        },
        "user_id": {
            "type": "string",
            "description": (
                "Your broker login. RabbitMQ refuses a publish whose `user_id` is not "
                "the connection's login, so it identifies you (security scheme `user_id`)."
            ),
        },
        "delivery_mode": {
            "type": "integer",
            "const": 2,
            "description": "Persistent, so the message survives a broker restart.",
        },
        "content_type": {
            "type": "string",
            "const": "application/json",
            "description": "Recommended; not checked.",
        },
        "headers": {
            "type": "object",
            "description": (
                "The AMQP headers table. A partner system sends none of these: "
                f"`{ON_BEHALF_OF_HEADER}` or `{COORDINATOR_HEADER}` from any login but the "
                "web portal's is refused with `not_authorized`. The portal (its own login, "
                "`[portal]` in the region config) sends on every message "
                f"`{ACTOR_HEADER}` and either `{ON_BEHALF_OF_HEADER}`, acting for one "
                f'partner on channel "portal", or (only for `regie.assign`) '
                f"`{COORDINATOR_HEADER}`, acting for a municipality's match coordinator; "
                "without them, or with both, its message is refused with `not_authorized`, "
                "answered in its own mailbox `partner.portal`, where a coordinator's "
                "receipts go too."
            ),
            "properties": {
                ON_BEHALF_OF_HEADER: {
                    "type": "string",
                    "description": (
                        'The id of the partner on channel "portal" the message acts for; '
                        "its receipt and notices go to that partner's mailbox."
                    ),
                    "examples": ["de-linde"],
                },
                COORDINATOR_HEADER: {
                    "type": "string",
                    "pattern": "^[0-9]{4}$",
                    "description": (
                        "For `regie.assign` only: the 4-digit code of the municipality "
                        "whose match coordinator acts. A value that is not a municipality "
                        "of the region is refused with `not_authorized`, as is a match "
                        "whose youth lives in another municipality."
                    ),
                    "examples": ["0363"],
                },
                ACTOR_HEADER: {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_ACTOR_CHARS,
                    "description": (
                        "The portal user who acts (printable characters); written to the "
                        "audit log with the action."
                    ),
                },
            },
        },
    },
}

_OUTBOUND_HEADERS: Final[dict[str, Any]] = {
    "type": "object",
    "description": "AMQP basic properties of a message in your mailbox.",
    "required": ["message_id"],
    "properties": {
        "message_id": {
            "type": "string",
            "description": (
                "Stable: a redelivered copy carries the same id. Drop a message whose "
                "`message_id` you have handled before."
            ),
        },
        "correlation_id": {
            "type": "string",
            "description": "On a receipt: the `message_id` of the message it answers.",
        },
        "delivery_mode": {"type": "integer", "const": 2, "description": "Persistent."},
        "content_type": {"type": "string", "const": "application/json"},
    },
}


def _rewrite_refs(node: Any) -> Any:
    """Point a schema's local ``#/$defs/X`` references at ``components/schemas``."""
    if isinstance(node, dict):
        return {
            key: (
                _SCHEMAS + value.removeprefix(_LOCAL_DEFS)
                if key == "$ref" and isinstance(value, str) and value.startswith(_LOCAL_DEFS)
                else _rewrite_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _add_schema(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    # Inbound and outbound models share some definitions (error codes, inform targets);
    # one name must always mean one schema, or a payload would silently change.
    if schemas.setdefault(name, schema) != schema:
        raise ValueError(f"two different JSON Schemas are both called {name!r}")


def _payload_schema(
    schemas: dict[str, Any], model: type[BaseModel], direction: Direction
) -> dict[str, str]:
    schema = dict(schema_for(model, direction))
    schema.pop("$schema", None)
    for name, definition in schema.pop("$defs", {}).items():
        _add_schema(schemas, name, _rewrite_refs(definition))
    _add_schema(schemas, model.__name__, _rewrite_refs(schema))
    return {"$ref": _SCHEMAS + model.__name__}


def _message(message_type: str, direction: Direction, payload: dict[str, str]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": message_type,
        "title": message_type,
        "contentType": "application/json",
        "headers": {"$ref": _SCHEMAS + f"{direction.capitalize()}Properties"},
        "payload": payload,
        "bindings": {"amqp": {"messageType": message_type, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    if message_type == "receipt":
        message["correlationId"] = {
            "description": "The `message_id` of the inbound message this receipt answers.",
            "location": "$message.header#/correlation_id",
        }
    return message


def _operation_id(prefix: str, message_type: str) -> str:
    return prefix + "".join(part.capitalize() for part in message_type.split("."))


def _message_ref(channel: str, message_type: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel}/messages/{message_type}"}


def _channels(inbound: list[str], outbound: list[str]) -> dict[str, Any]:
    def refs(types: list[str]) -> dict[str, Any]:
        return {t: {"$ref": f"#/components/messages/{t}"} for t in types}

    return {
        INBOUND_CHANNEL: {
            # With an AMQP "routingKey" channel the address is the routing key.
            "address": "{routing_key}",
            "title": "vi.inbound",
            "description": (
                "The durable topic exchange partners publish to. The routing key is the "
                f"message `type`; an onboarding load of existing meldingen uses "
                f"`{ONBOARDING_ROUTING_KEY}` (the body's `type` stays `melding.register`) "
                "and is handled after live traffic. A body is one UTF-8 JSON object of at "
                "most 64 KiB."
            ),
            "parameters": {
                "routing_key": {
                    "description": (
                        "The message `type`, or `onboard.melding.register` for an onboarding load."
                    ),
                    "enum": [*inbound, ONBOARDING_ROUTING_KEY],
                }
            },
            "messages": refs(inbound),
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": INBOUND_CHANNEL,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
        OUTBOUND_CHANNEL: {
            "address": "{partner_id}",
            "title": "vi.outbound",
            "description": (
                "The durable direct exchange the index publishes to, with the partner id "
                "as routing key. Partners do not use it directly: they read their "
                "mailbox, which is bound to it."
            ),
            "parameters": {"partner_id": _PARTNER_ID},
            "messages": refs(outbound),
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": OUTBOUND_CHANNEL,
                        "type": "direct",
                        "durable": True,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
        MAILBOX_CHANNEL: {
            "address": MAILBOX_ADDRESS,
            "title": "partner.<id>",
            "description": (
                "Your mailbox: a durable queue bound to `vi.outbound` with your partner id. "
                "It fills while you are offline; consume it with manual acknowledgements."
            ),
            "parameters": {"partner_id": _PARTNER_ID},
            "messages": refs(outbound),
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": MAILBOX_ADDRESS,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                    },
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
    }


def _operations(inbound: list[str], outbound: list[str]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for message_type in inbound:
        operations[_operation_id("send", message_type)] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{INBOUND_CHANNEL}"},
            "summary": f"Publish `{message_type}` to vi.inbound, routing key `{message_type}`.",
            "messages": [_message_ref(INBOUND_CHANNEL, message_type)],
            "security": [{"$ref": "#/components/securitySchemes/user_id"}],
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": AMQP_BINDING_VERSION}},
            "reply": {
                "channel": {"$ref": f"#/channels/{MAILBOX_CHANNEL}"},
                "messages": [_message_ref(MAILBOX_CHANNEL, "receipt")],
            },
        }
    register = operations.get(_operation_id("send", "melding.register"))
    if register is not None:
        register["description"] = (
            f"An onboarding load of existing meldingen uses routing key "
            f"`{ONBOARDING_ROUTING_KEY}` instead; it is handled after live traffic."
        )
    assign = operations.get(_operation_id("send", "regie.assign"))
    if assign is not None:
        assign["description"] = (
            "Only the web portal's login sends it, with header "
            f"`{COORDINATOR_HEADER}` (and `{ACTOR_HEADER}`), for the match coordinator "
            "of the youth's municipality; the receipt goes to `partner.portal`, and "
            "every partner in the match gets `regie.notice`."
        )
    operations["receiveMailbox"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{MAILBOX_CHANNEL}"},
        "summary": "Consume your mailbox: receipts and notices.",
        "description": (
            "Acknowledge a message only after storing it. Delivery is at least once: "
            "drop a `message_id` you have handled before, and ignore types you do not "
            "know yet."
        ),
        "messages": [_message_ref(MAILBOX_CHANNEL, t) for t in outbound],
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
    }
    return operations


def _servers() -> dict[str, Any]:
    variables = {
        "host": {"description": "The broker host, given by the operator."},
        "vhost": {"description": "The virtual host, given by the operator.", "default": "/"},
    }
    return {
        "broker": {
            "host": "{host}:5672",
            "protocol": "amqp",
            "protocolVersion": "0-9-1",
            "pathname": "{vhost}",
            "variables": variables,
            "security": [{"$ref": "#/components/securitySchemes/user_id"}],
        },
        "broker-tls": {
            "host": "{host}:5671",
            "protocol": "amqps",
            "protocolVersion": "0-9-1",
            "pathname": "{vhost}",
            "description": "AMQP over TLS 1.2 or newer.",
            "variables": variables,
            "security": [
                {"$ref": "#/components/securitySchemes/user_id"},
                {"$ref": "#/components/securitySchemes/client_certificate"},
            ],
        },
    }


_SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "user_id": {
        "type": "userPassword",
        "description": (
            "Your organisation's own broker login. Set the AMQP property `user_id` to it "
            "on every message: RabbitMQ refuses a publish whose `user_id` differs from "
            "the login, and the index finds your organisation through it. A message "
            "without `user_id`, or from a login that is no partner of the region, gets "
            "no receipt: it is set aside for the operators."
        ),
    },
    "client_certificate": {
        "type": "X509",
        "description": (
            "Over TLS, a client certificate instead of a password: the broker maps its "
            "common name to your broker login, and the `user_id` rule holds unchanged."
        ),
    },
}


def asyncapi_document() -> dict[str, Any]:
    """The whole AsyncAPI document as plain data."""
    schemas: dict[str, Any] = {
        "InboundProperties": _INBOUND_HEADERS,
        "OutboundProperties": _OUTBOUND_HEADERS,
    }
    messages: dict[str, Any] = {}
    catalogue: list[tuple[Direction, dict[str, type[BaseModel]]]] = [
        ("inbound", dict(INBOUND_TYPES)),
        ("outbound", dict(OUTBOUND_TYPES)),
    ]
    for direction, models in catalogue:
        for message_type, model in models.items():
            payload = _payload_schema(schemas, model, direction)
            messages[message_type] = _message(message_type, direction, payload)
    inbound, outbound = list(INBOUND_TYPES), list(OUTBOUND_TYPES)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Verwijsindex partner interface",
            "version": CONTRACT_VERSION,
            "description": (
                "How a partner system talks to a regional Verwijsindex over RabbitMQ "
                "(AMQP 0-9-1). This document describes the partner's side: what it sends "
                "to `vi.inbound` and what it receives in its mailbox. Every message "
                "gets a receipt; the rules the schemas cannot express (11-proef, age, "
                "clock, municipality, roles) are checked by the index and answered with "
                "error codes."
            ),
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": _channels(inbound, outbound),
        "operations": _operations(inbound, outbound),
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes shared parts out in full: no ``&id001`` anchors for a reader to chase."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_asyncapi(directory: Path) -> Path:
    """Write ``asyncapi.yaml`` into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ASYNCAPI_FILE
    text = yaml.dump(
        asyncapi_document(), Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=88
    )
    path.write_text(text, encoding="utf-8")
    return path
