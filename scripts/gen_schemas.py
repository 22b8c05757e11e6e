"""Write the published JSON Schemas from the message dataclasses (`--check`: fail on drift).

`contract/messages.py` is the one model of Request, Response and ErrorInfo; this script turns
its dataclasses into JSON Schema (draft 2020-12) with the standard library only:

- a dataclass is an object that allows no other properties: its docstring is the description,
  its fields are the properties (in order), the fields without a default are required;
- a field's type gives the property's schema (str, int, float, bool, None, list[...],
  dict[str, Any], unions as `anyOf`; an Enum or a nested dataclass is a `$ref` to `$defs`), the
  `Keyword`s of `Annotated[...]` add their keyword, the field's metadata its `description`, and
  a plain default its `default`;
- keys are sorted (except the properties, which keep the field order), and each property not
  typed by a `$defs` entry gets a title made from its name, as the published files always had.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

from dicom_hub.contract import CONTRACT_VERSION
from dicom_hub.contract.messages import Keyword, Request, Response

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "contract" / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
DOCUMENTS = (("request", Request, "dicom-hub request"), ("response", Response, "dicom-hub response"))
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def object_schema(cls: type, title: str, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of the dataclass `cls`; the types it refers to are added to `defs`."""
    hints = typing.get_type_hints(cls, include_extras=True)
    properties, required = {}, []
    for f in dataclasses.fields(cls):
        prop = type_schema(hints[f.name], defs)
        if not prop.get("$ref") and not any("$ref" in branch for branch in prop.get("anyOf", [])):
            prop["title"] = f.name.replace("_", " ").title()
        if "description" in f.metadata:
            prop["description"] = f.metadata["description"]
        if f.default is not dataclasses.MISSING:
            prop["default"] = f.default
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        properties[f.name] = prop
    return {
        "additionalProperties": False,
        "description": inspect.cleandoc(cls.__doc__ or ""),
        "properties": properties,
        "required": required,
        "title": title,
        "type": "object",
    }


def type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The schema of one type hint; Enums and dataclasses go to `defs` and are referred to."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        schema = type_schema(args[0], defs)
        for keyword in args[1:]:
            if not isinstance(keyword, Keyword):
                raise TypeError(f"{hint!r}: Annotated metadata must be a Keyword of contract/messages.py")
            schema[keyword.name] = keyword.value
        return schema
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [type_schema(arg, defs) for arg in args]}
    if origin is list:
        return {"items": type_schema(args[0], defs), "type": "array"}
    if origin is dict and args == (str, Any):
        return {"additionalProperties": True, "type": "object"}
    if isinstance(hint, type) and issubclass(hint, Enum):
        defs[hint.__name__] = {
            "description": inspect.cleandoc(hint.__doc__ or ""),
            "enum": [member.value for member in hint],
            "title": hint.__name__,
            "type": "string",
        }
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if dataclasses.is_dataclass(hint):
        defs[hint.__name__] = object_schema(hint, hint.__name__, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if hint in JSON_TYPES:
        return {"type": JSON_TYPES[hint]}
    raise TypeError(f"no JSON Schema for the type {hint!r}: extend scripts/gen_schemas.py")


def sorted_keys(schema: Any, in_properties: bool = False) -> Any:
    """`schema` with the keys of every object sorted, except property names (field order)."""
    if isinstance(schema, dict):
        keys = schema if in_properties else sorted(schema)
        return {key: sorted_keys(schema[key], key == "properties" and not in_properties) for key in keys}
    if isinstance(schema, list):
        return [sorted_keys(item) for item in schema]
    return schema


def render(name: str, cls: type, title: str) -> str:
    defs: dict[str, Any] = {}
    body = object_schema(cls, title, defs)
    schema = {
        "$schema": DIALECT,
        "$id": f"https://dicom-hub.dev/contract/{CONTRACT_VERSION}/{name}.schema.json",
        "x-contract-version": CONTRACT_VERSION,
        **sorted_keys({**({"$defs": defs} if defs else {}), **body}),
    }
    # The response shape must also hold the ok <-> error rule (the dataclass states it in words).
    if name == "response":
        schema["oneOf"] = [
            {"properties": {"ok": {"const": True}, "error": {"type": "null"}}},
            {"properties": {"ok": {"const": False}, "error": {"$ref": "#/$defs/ErrorInfo"}}, "required": ["error"]},
        ]
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed schema differs")
    args = parser.parse_args()
    drift = []
    for name, cls, title in DOCUMENTS:
        path = SCHEMA_DIR / f"{name}.schema.json"
        text = render(name, cls, title)
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
