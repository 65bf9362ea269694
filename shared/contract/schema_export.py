"""Write the JSON Schemas that partners read, generated from the contract models.

The models are the single source: the published schema is never edited by hand.
Run ``python -m shared.contract.schema_export DIR`` to (re)write them.

An inbound schema accepts exactly the messages whose shape the index accepts:
structure, types, lengths, characters, patterns and formats
(``tests/unit/test_schema_agreement.py`` holds them to that). What a static schema
cannot know, the index checks on its own; each inbound schema's description lists
those checks (:data:`INDEX_ONLY_CHECKS`).
"""

import json
import sys
from pathlib import Path
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel

from shared.contract.inbound import INBOUND_TYPES, routing_keys
from shared.contract.outbound import OUTBOUND_TYPES

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
INDEX_FILE: Final = "index.json"

Direction = Literal["inbound", "outbound"]

# Per inbound type: what the index checks beyond the schema, with the error code.
# They need arithmetic, the clock, the region config or what is stored.
_REF_RULES: Final = "melding_ref is one of your active meldingen (unknown_melding, not_active)"
INDEX_ONLY_CHECKS: Final[dict[str, list[str]]] = {
    "melding.register": [
        "youth.bsn passes the 11-proef (bsn_checksum)",
        "the youth is under 23 on the day of reported_at (too_old)",
        "youth.birth_date is not after the day of reported_at (birth_date_future)",
        "reported_at is at most 5 minutes ahead of the index's clock (reported_at_future)",
        "youth.municipality is a municipality of the region (unknown_municipality)",
        "melding_ref was never used before by you (duplicate_ref)",
        "you have no active melding on the youth yet (already_registered)",
    ],
    "melding.withdraw": [_REF_RULES],
    "regie.claim": [
        _REF_RULES,
        "the melding is in a match of at least two active meldingen (no_match)",
        "nobody else has the lead (regie_taken)",
    ],
    "regie.assign": [
        "only the portal's login may send it, with header x-vi-coordinator naming a"
        " municipality of the region and x-vi-actor (not_authorized)",
        "match_id is a live match (unknown_match)",
        "the youth of the match lives in the coordinator's municipality (not_authorized)",
        "partner has an active melding in the match (not_active)",
    ],
    "melding.informed": [_REF_RULES, "informed_on is not in the future (schema)"],
    "person.moved": [
        "bsn passes the 11-proef (bsn_checksum)",
        "municipality is a municipality of the region (unknown_municipality)",
        "the index holds something on the person (unknown_person)",
    ],
    "person.deceased": [
        "bsn passes the 11-proef (bsn_checksum)",
        "died_on is not in the future (schema)",
        "the index holds something on the person (unknown_person)",
    ],
    "person.family": [
        "bsn passes the 11-proef (bsn_checksum)",
        "every parents.<i> passes the 11-proef (bsn_checksum)",
        "the index holds something on the person (unknown_person)",
    ],
}


def schema_for(model: type[BaseModel], direction: Direction) -> dict[str, Any]:
    # Inbound schemas describe what we accept, outbound ones what we send.
    mode: Literal["validation", "serialization"] = (
        "validation" if direction == "inbound" else "serialization"
    )
    schema = {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode=mode)}
    if direction == "inbound":
        (message_type,) = get_args(model.model_fields["type"].annotation)
        checks = "Checked by the index only: " + "; ".join(INDEX_ONLY_CHECKS[message_type]) + "."
        own = schema.get("description")
        schema["description"] = f"{own}\n\n{checks}" if own else checks
    return schema


def _write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_schemas(directory: Path) -> list[Path]:
    """Write ``<type>.schema.json`` per message and an ``index.json``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index: list[dict[str, Any]] = []
    catalogue: list[tuple[Direction, dict[str, type[BaseModel]]]] = [
        ("inbound", dict(INBOUND_TYPES)),
        ("outbound", dict(OUTBOUND_TYPES)),
    ]
    for direction, models in catalogue:
        for message_type, model in models.items():
            path = directory / f"{message_type}.schema.json"
            _write_json(path, schema_for(model, direction))
            written.append(path)
            entry: dict[str, Any] = {
                "type": message_type,
                "direction": direction,
                "schema": path.name,
            }
            if direction == "inbound":
                entry["routing_keys"] = routing_keys(message_type)
            index.append(entry)
    index_path = directory / INDEX_FILE
    _write_json(index_path, {"contract_version": 1, "messages": index})
    written.append(index_path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m shared.contract.schema_export DIRECTORY", file=sys.stderr)
        return 2
    for path in export_schemas(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
