"""The operation catalog: which ops exist, what they take and give, and their option schemas.

The catalog is data (`contract/ops/<family>.json`, one file per op family). This module only
loads it and checks options against it, so `dicom-hub ops` and every backend see the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ErrorCode, HubError
from .schema_check import Check, compile_check, first_problem

OPS_DIR = Path(__file__).with_name("ops")
INPUT_KINDS = ("none", "file", "files", "directory", "path")
OUTPUT_KINDS = ("none", "file", "directory")

# Options every op accepts; the dispatcher (not the backend) honours them.
COMMON_OPTIONS: dict[str, dict[str, Any]] = {
    "timeout": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 86400,
        "description": "Seconds before the op is stopped (error 'timeout'); at most one day.",
    },
}
OVERWRITE_OPTION = {"type": "boolean", "default": False, "description": "Replace an existing output file."}
# Ops marked `writes_dicom` in the catalog: the dispatcher checks each file written before answering ok.
VERIFY_OPTION = {
    "enum": ["structure", "pixels"],
    "default": "structure",
    "description": "How the written DICOM is checked before ok. structure: complete parse, transfer syntax, Pixel Data length or "
    "fragments, SOP Instance UID and untouched elements kept by lossless ops (no pixel decoding). pixels: also decode input and "
    "output of a lossless conversion and compare every pixel value (slower).",
}
DISPATCHER_OPTIONS = frozenset({"timeout", "overwrite", "verify"})


@dataclass(frozen=True)
class OpSpec:
    """One catalog entry."""

    name: str
    family: str
    summary: str
    input: str
    output: str
    output_required: bool
    options_schema: dict[str, Any] = field(repr=False)
    writes_dicom: bool = False  # its output files are verified before the answer is ok

    @property
    def option_names(self) -> frozenset[str]:
        return frozenset(self.options_schema.get("properties", {}))

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: v["default"] for k, v in self.options_schema.get("properties", {}).items() if "default" in v}

    def validate_options(self, options: dict[str, Any]) -> None:
        """Raise `invalid_request` naming the first option that does not fit the schema."""
        unknown = sorted(set(options) - self.option_names)
        if unknown:
            valid = ", ".join(sorted(self.option_names)) or "none"
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"unknown option {unknown[0]!r} for op {self.name!r}",
                f"valid options: {valid} (see `dicom-hub ops {self.name}`)",
            )
        _explain_refused_value(self.name, options)
        error = _first_schema_error(self.name, options)
        if error is not None:
            raise HubError(ErrorCode.INVALID_REQUEST, error, f"see `dicom-hub ops {self.name}` for the option schema")


def _explain_refused_value(op_name: str, options: dict[str, Any]) -> None:
    """A value the schema's enum would refuse with a bare list of choices gets the table's reason
    instead (e.g. Explicit VR Big Endian is read only, retired in 2004): same words on every backend."""
    value = options.get("transfer_syntax")
    if op_name == "transcode" and isinstance(value, str):
        from .transfer_syntaxes import resolve_written

        resolve_written(value)


def _op_from_entry(name: str, family: str, entry: dict[str, Any]) -> OpSpec:
    schema = json.loads(json.dumps(entry["options"]))
    props = schema.setdefault("properties", {})
    for key, value in COMMON_OPTIONS.items():
        props.setdefault(key, value)
    if entry["output"] != "none":
        props.setdefault("overwrite", OVERWRITE_OPTION)
    if entry.get("writes_dicom"):
        props.setdefault("verify", VERIFY_OPTION)
    return OpSpec(
        name=name,
        family=family,
        summary=entry["summary"],
        input=entry["input"],
        output=entry["output"],
        output_required=entry.get("output_required", entry["output"] != "none"),
        options_schema=schema,
        writes_dicom=bool(entry.get("writes_dicom")),
    )


@cache
def load_catalog() -> dict[str, OpSpec]:
    """Every op of every family file, by name."""
    ops: dict[str, OpSpec] = {}
    for path in sorted(OPS_DIR.glob("*.json")):
        entries = json.loads(path.read_text())
        for name, entry in entries.items():
            if name.startswith("$"):
                continue
            if name in ops:
                raise RuntimeError(f"op {name!r} is defined twice (in {ops[name].family} and {path.stem})")
            ops[name] = _op_from_entry(name, path.stem, entry)
    return ops


def get_op(name: str) -> OpSpec:
    """The catalog entry for `name`, or `unknown_op` listing the closest names."""
    catalog = load_catalog()
    try:
        return catalog[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, catalog, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise HubError(ErrorCode.UNKNOWN_OP, f"unknown op {name!r}", hint + "`dicom-hub ops` lists every op") from None


@cache
def _options_check(op_name: str) -> Check:
    return compile_check(load_catalog()[op_name].options_schema)


def _first_schema_error(op_name: str, options: dict[str, Any]) -> str | None:
    problem = first_problem(_options_check(op_name), options, "options")
    return None if problem is None else f"option {problem.where!r} of op {op_name!r} {problem.why}"
