"""What a backend receives and returns: a `Job` (a request after validation and path
resolution) and an `Outcome` (what the op produced). The dispatcher wraps the outcome
into a `Response`, so no backend builds responses by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError


@dataclass(frozen=True)
class Job:
    """A validated request, ready to run.

    `options` holds only what the user gave (a backend must honour or refuse each one);
    `defaults` holds the catalog defaults for the rest, read through `option()`.
    """

    op: str
    inputs: tuple[Path, ...]
    output: Path | None
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    id: str | int | None = None

    @property
    def input(self) -> Path:
        """The single input of a one-input op."""
        return self.inputs[0]

    @property
    def output_path(self) -> Path:
        """The output of an op that writes one (the dispatcher refuses such a request without it)."""
        if self.output is None:
            raise HubError(ErrorCode.INVALID_REQUEST, f"op {self.op!r} needs an output", "set 'output' in the request (or --output)")
        return self.output

    def option(self, name: str, default: Any = None) -> Any:
        """The given value of an option, else the catalog default, else `default`."""
        if name in self.options:
            return self.options[name]
        return self.defaults.get(name, default)

    @property
    def overwrite(self) -> bool:
        return bool(self.option("overwrite", False))


@dataclass
class Outcome:
    """The result of a successful op. Failures raise `HubError` instead."""

    metadata: dict[str, Any] = field(default_factory=dict)
    output_files: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
