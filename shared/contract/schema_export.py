"""Write the JSON Schemas that partners read, generated from the contract models.

The models are the single source: the published schema is never edited by hand.
Run ``python -m shared.contract.schema_export DIR`` to (re)write them.
"""

import json
import sys
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel

from shared.contract.inbound import INBOUND_TYPES
from shared.contract.outbound import OUTBOUND_TYPES

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
INDEX_FILE: Final = "index.json"

Direction = Literal["inbound", "outbound"]


def schema_for(model: type[BaseModel], direction: Direction) -> dict[str, Any]:
    # Inbound schemas describe what we accept, outbound ones what we send.
    mode: Literal["validation", "serialization"] = (
        "validation" if direction == "inbound" else "serialization"
    )
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode=mode)}


def _write_json(path: Path, content: object) -> None:
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_schemas(directory: Path) -> list[Path]:
    """Write ``<type>.schema.json`` per message and an ``index.json``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index: list[dict[str, str]] = []
    catalogue: list[tuple[Direction, dict[str, type[BaseModel]]]] = [
        ("inbound", dict(INBOUND_TYPES)),
        ("outbound", dict(OUTBOUND_TYPES)),
    ]
    for direction, models in catalogue:
        for message_type, model in models.items():
            path = directory / f"{message_type}.schema.json"
            _write_json(path, schema_for(model, direction))
            written.append(path)
            index.append({"type": message_type, "direction": direction, "schema": path.name})
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
