"""Write the published JSON Schemas from the pydantic models (`--check`: fail on drift)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dicom_hub.contract import CONTRACT_VERSION
from dicom_hub.contract.models import Request, Response

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "contract" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def render(model: type, name: str) -> str:
    schema = {
        "$schema": DIALECT,
        "$id": f"https://dicom-hub.dev/contract/{CONTRACT_VERSION}/{name}.schema.json",
        "x-contract-version": CONTRACT_VERSION,
        **model.model_json_schema(),
    }
    # The response shape must also hold the ok <-> error rule that the model enforces in code.
    if name == "response":
        schema["oneOf"] = [
            {"properties": {"ok": {"const": True}, "error": {"type": "null"}}},
            {"properties": {"ok": {"const": False}, "error": {"$ref": "#/$defs/ErrorInfo"}}, "required": ["error"]},
        ]
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema differs")
    args = parser.parse_args()
    drift = []
    for model, name in ((Request, "request"), (Response, "response")):
        path = SCHEMA_DIR / f"{name}.schema.json"
        text = render(model, name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(path.name)
        else:
            path.write_text(text)
    if drift:
        print(f"schemas out of date: {', '.join(drift)}; run python scripts/gen_schemas.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
