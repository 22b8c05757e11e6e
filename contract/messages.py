"""Request, Response and ErrorInfo: the one model of the messages.

These dataclasses are what the running program uses, and the published JSON Schemas
(`schemas/request.schema.json`, `schemas/response.schema.json`) are generated from them by
`scripts/gen_schemas.py`: field order, types, defaults, the `description` in each field's
metadata and the `Keyword`s in `Annotated[...]` become the schema. A test fails when
the committed schemas drift from them.

Requests and responses are checked against the published schemas with fastjsonschema
(`schema_check.py`), which costs microseconds; a model library (pydantic) would cost more to
import than a whole `info` request, and every `dicom-hub run` would pay for it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

from .errors import ErrorCode, HubError
from .schema_check import first_problem, published_check


class Keyword(NamedTuple):
    """A JSON Schema keyword a value keeps beyond its type: `Annotated[str, Keyword("minLength", 1)]`."""

    name: str
    value: Any


VERSION_PATTERN = r"^[0-9]+\.[0-9]+$"
Version = Annotated[str, Keyword("pattern", VERSION_PATTERN)]
NonEmpty = Annotated[str, Keyword("minLength", 1)]


def schema_problem(name: str, data: Any) -> str | None:
    """Why `data` is not a valid <name> document (None when it is), naming the field."""
    problem = first_problem(published_check(name), data, name)
    return None if problem is None else str(problem)


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


@dataclass(frozen=True, kw_only=True)
class Request:
    """One operation to run: `{op, input, output, options, backend}`."""

    contract: Version | None = field(
        default=None, metadata={"description": "Contract version the client speaks; a different major version is rejected."}
    )
    id: str | int | None = field(default=None, metadata={"description": "Echoed back unchanged in the response."})
    op: NonEmpty = field(metadata={"description": "Operation name from the catalog (`dicom-hub ops`)."})
    input: NonEmpty | list[NonEmpty] | None = field(
        default=None,
        metadata={
            "description": "A path, a list of paths, `sample:<name>` for a file of pydicom's bundled test data, or null for ops without input."
        },
    )
    output: NonEmpty | None = field(default=None, metadata={"description": "Output file or directory, or null."})
    options: dict[str, Any] = field(default_factory=dict, metadata={"description": "Op options; see the op's schema in the catalog."})
    backend: NonEmpty = field(
        default="auto", metadata={"description": "Adapter name, language alias (python, cpp, rust, java, csharp), or auto."}
    )

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
    """Why the op failed, and what to do about it."""

    code: ErrorCode
    message: NonEmpty
    hint: str | None = None


@dataclass
class Response:
    """The answer to one request. `ok` is true exactly when `error` is null. Every field is
    always present, so clients never need defaults of their own."""

    contract: Version
    id: str | int | None
    op: str | None
    backend: str | None = field(metadata={"description": "The adapter that actually answered (null when none was reached)."})
    ok: bool
    returncode: int = field(
        metadata={
            "description": (
                "Exit code of the backend's process when one ran; otherwise (in-process backends, requests refused before any backend) "
                "the exit code `dicom-hub run` gives this response: 0 ok, 1 the op failed, 2 invalid request or unknown op."
            )
        }
    )
    stdout: str
    stderr: str
    output_files: list[str]
    metadata: dict[str, Any]
    duration_ms: Annotated[float, Keyword("minimum", 0)]
    error: ErrorInfo | None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict, sharing (not copying) metadata: `asdict` would deep-copy
        every metadata value, which costs more than the rest of an `info` request."""
        data = dict(self.__dict__)
        if self.error is not None:
            data["error"] = {"code": self.error.code.value, "message": self.error.message, "hint": self.error.hint}
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
