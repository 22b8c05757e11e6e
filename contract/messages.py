"""Request and Response as the running program sees them: plain dataclasses checked against the
published JSON Schemas (which `models.py` generates).

Why not the pydantic models themselves? Importing pydantic and building the models costs more
than a whole `info` request (~120 ms), and every `dicom-hub run` pays for it. The schemas are the
contract; fastjsonschema compiles them into a check that costs microseconds. `tests/contract`
asserts that the models, jsonschema and these checks give the same verdict on every example.
"""

from __future__ import annotations

import json
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
        return f"{where}: {err.message.removeprefix(err.name).strip()}"
    return None


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
        problem = schema_problem("request", data)
        if problem:
            raise HubError(ErrorCode.INVALID_REQUEST, problem, "see contract/schemas/request.schema.json")
        return cls(**data)


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
        """JSON text; raises TypeError/ValueError when metadata holds a value JSON cannot carry."""
        return json.dumps(self.as_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def problem(self) -> str | None:
        """Why this response would violate the published schema (None when it is valid)."""
        return schema_problem("response", self.as_dict())

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Response:
        """A Response from a document already checked with `schema_problem("response", ...)`."""
        error = data.get("error")
        return cls(**{**data, "error": ErrorInfo(**error) if error else None})
