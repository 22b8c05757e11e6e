"""Typed errors: the closed list of error codes, and the exception that carries one.

Every failure anywhere in dicom-hub ends as a `HubError`, which the dispatcher turns into a
schema-valid response. The message says what went wrong; the hint says how to fix it.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a request failed. Clients branch on these, so the list only grows."""

    INVALID_REQUEST = "invalid_request"
    UNKNOWN_OP = "unknown_op"
    UNSUPPORTED_OP = "unsupported_op"
    UNSUPPORTED_OPTION = "unsupported_option"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    INPUT_NOT_FOUND = "input_not_found"
    NOT_DICOM = "not_dicom"
    DECODE_ERROR = "decode_error"
    CODEC_UNAVAILABLE = "codec_unavailable"
    OUTPUT_EXISTS = "output_exists"
    OUTPUT_ERROR = "output_error"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    BACKEND_ERROR = "backend_error"
    INTERNAL_ERROR = "internal_error"


# Exit codes of `dicom-hub run`: 0 ok, 1 the op failed, 2 the request itself was invalid.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
REQUEST_ERRORS = frozenset({ErrorCode.INVALID_REQUEST, ErrorCode.UNKNOWN_OP})


class HubError(Exception):
    """A failure with a contract error code, a message and an optional fix-it hint."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        hint: str | None = None,
        *,
        stdout: str = "",
        stderr: str = "",
        returncode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.hint = hint
        # What an external tool printed when it failed: kept in the response, never swallowed.
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code.value, "message": self.message, "hint": self.hint}

    def __repr__(self) -> str:
        return f"HubError({self.code.value!r}, {self.message!r})"


def exit_code_for(code: ErrorCode | str | None) -> int:
    """The CLI exit code for a response's error code (None means success)."""
    if code is None:
        return EXIT_OK
    return EXIT_INVALID if ErrorCode(code) in REQUEST_ERRORS else EXIT_FAILED
