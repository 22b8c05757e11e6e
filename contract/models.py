"""Request and Response: the single source of the published JSON Schemas.

`scripts/gen_schemas.py` writes `contract/schemas/*.schema.json` from these models, and a test
fails when the committed schemas drift from them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ErrorCode

VERSION_PATTERN = r"^[0-9]+\.[0-9]+$"
PathText = Annotated[str, Field(min_length=1)]


class Request(BaseModel):
    """One operation to run: `{op, input, output, options, backend}`."""

    model_config = ConfigDict(extra="forbid", title="dicom-hub request")

    contract: str | None = Field(
        None, pattern=VERSION_PATTERN, description="Contract version the client speaks; a different major version is rejected."
    )
    id: str | int | None = Field(None, description="Echoed back unchanged in the response.")
    op: str = Field(..., min_length=1, description="Operation name from the catalog (`dicom-hub ops`).")
    input: PathText | list[PathText] | None = Field(
        None,
        description="A path, a list of paths, `sample:<name>` for a file of pydicom's bundled test data, or null for ops without input.",
    )
    output: PathText | None = Field(None, description="Output file or directory, or null.")
    options: dict[str, Any] = Field(default_factory=dict, description="Op options; see the op's schema in the catalog.")
    backend: str = Field("auto", min_length=1, description="Adapter name, language alias (python, cpp, rust, java, csharp), or auto.")


class ErrorInfo(BaseModel):
    """Why the op failed, and what to do about it."""

    model_config = ConfigDict(extra="forbid")

    code: ErrorCode
    message: str = Field(..., min_length=1)
    hint: str | None = None


class Response(BaseModel):
    """The answer to one request. `ok` is true exactly when `error` is null. Every field is
    always present, so clients never need defaults of their own."""

    model_config = ConfigDict(extra="forbid", title="dicom-hub response")

    contract: str = Field(..., pattern=VERSION_PATTERN)
    id: str | int | None
    op: str | None
    backend: str | None = Field(..., description="The adapter that actually answered (null when none was reached).")
    ok: bool
    returncode: int = Field(
        ...,
        description=(
            "Exit code of the backend's process when one ran; otherwise (in-process backends, requests refused before any backend) "
            "the exit code `dicom-hub run` gives this response: 0 ok, 1 the op failed, 2 invalid request or unknown op."
        ),
    )
    stdout: str
    stderr: str
    output_files: list[str]
    metadata: dict[str, Any]
    duration_ms: float = Field(..., ge=0)
    error: ErrorInfo | None

    @model_validator(mode="after")
    def _ok_iff_no_error(self) -> Response:
        if self.ok != (self.error is None):
            raise ValueError("ok must be true exactly when error is null")
        return self
