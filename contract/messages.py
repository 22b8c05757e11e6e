"""Request and Response as the running program sees them: plain dataclasses checked against the
published JSON Schemas (which `models.py` generates).

Why not the pydantic models themselves? Importing pydantic and building the models costs more
than a whole `info` request (~120 ms), and every `dicom-hub run` pays for it. The schemas are the
contract; fastjsonschema compiles them into a check that costs microseconds. `tests/contract`
asserts that the models, jsonschema and these checks give the same verdict on every example.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from .errors import ErrorCode, HubError


@cache
def schema_check(name: str) -> Callable[[Any], Any]:
    """The compiled check of `schemas/<name>.schema.json` (raises JsonSchemaValueException)."""
    import fastjsonschema

    schema = json.loads(files("dicom_hub.contract").joinpath("schemas", f"{name}.schema.json").read_text())
    return fastjsonschema.compile(schema, use_default=False)


def schema_problem(name: str, data: Any) -> str | None:
    """Why `data` is not a valid <name> document (None when it is), naming the field."""
    from fastjsonschema import JsonSchemaValueException

    try:
        schema_check(name)(data)
    except JsonSchemaValueException as err:
        where = ".".join(str(p) for p in err.path[1:]) or name
        return f"{where}: {err.message.removeprefix(err.name or '').strip()}"
    return None


def request_text(data: bytes, where: str) -> str:
    """Request bytes as text: UTF-8 (RFC 8259), else `invalid_request` naming the bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"{where} is not valid UTF-8: byte 0x{data[err.start]:02x} at offset {err.start}",
            "send requests as UTF-8 JSON; write other characters as \\u escapes",
        ) from None


@dataclass(frozen=True)
class Request:
    op: str
    input: str | list[str] | None = None
    output: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    id: str | int | None = None
    contract: str | None = None

    @classmethod
    def from_data(cls, data: Any) -> Request:
        """A Request from parsed JSON, or `invalid_request` naming the offending field."""
        if not isinstance(data, dict):
            raise HubError(ErrorCode.INVALID_REQUEST, "request must be a JSON object", 'e.g. {"op": "info", "input": "sample:CT_small.dcm"}')
        problem = schema_problem("request", data) or _surrogate_problem(data)
        if problem:
            raise HubError(ErrorCode.INVALID_REQUEST, problem, "see contract/schemas/request.schema.json")
        return cls(**data)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Undecodable bytes of a file name, as Python spells them (os.fsdecode): paths may hold them.
_NOT_A_FILE_NAME_BYTE = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def _surrogate_problem(data: dict[str, Any]) -> str | None:
    """A lone surrogate (`"\\ud800"`) is no character: no file, tool or DICOM value can carry it.
    Paths may hold U+DC80..U+DCFF, which stand for the bytes of a file name that is not UTF-8."""

    def bad(value: Any, pattern: re.Pattern[str]) -> bool:
        if isinstance(value, str):
            return bool(pattern.search(value))
        if isinstance(value, dict):
            return any(bad(k, _LONE_SURROGATE) or bad(v, _LONE_SURROGATE) for k, v in value.items())
        if isinstance(value, list):
            return any(bad(v, pattern) for v in value)
        return False

    for key, value in data.items():
        if bad(value, _NOT_A_FILE_NAME_BYTE if key in ("input", "output") else _LONE_SURROGATE):
            return f"{key}: holds a lone surrogate escape (\\ud800-\\udfff), which is not a character"
    return None


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str
    hint: str | None = None


@dataclass
class Response:
    """One answer. Field order is the published order; `ok` is true exactly when `error` is None."""

    contract: str
    id: str | int | None
    op: str | None
    backend: str | None
    ok: bool
    returncode: int
    stdout: str
    stderr: str
    output_files: list[str]
    metadata: dict[str, Any]
    duration_ms: float
    error: ErrorInfo | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict, sharing (not copying) metadata: `asdict` would deep-copy
        every metadata value, which costs more than the rest of an `info` request."""
        data = dict(self.__dict__)
        if self.error is not None:
            data["error"] = {"code": self.error.code, "message": self.error.message, "hint": self.error.hint}
        return data

    def to_json(self, indent: int | None = None) -> str:
        """Standard JSON text that encodes to valid UTF-8; raises TypeError/ValueError when
        metadata holds a value JSON cannot carry (NaN and Infinity included).

        A lone surrogate (a request's `"\\ud800"`, a file name that is not UTF-8) cannot be
        UTF-8: then every non-ASCII character is written as a \\u escape, which any JSON
        reader turns back into the same string.
        """
        data = self.as_dict()
        text = json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = json.dumps(data, indent=indent, ensure_ascii=True, allow_nan=False)
        return text

    def problem(self) -> str | None:
        """Why this response would violate the published schema (None when it is valid)."""
        return schema_problem("response", self.as_dict())

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Response:
        """A Response from a document already checked with `schema_problem("response", ...)`."""
        error = data.get("error")
        return cls(**{**data, "error": ErrorInfo(**error) if error else None})
