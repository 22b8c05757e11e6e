"""A DICOM file appears at the output path only once it has passed verification.

The backend writes to a hidden staging file beside the output (same folder, same suffix:
`.<name>.<random>.staged<suffix>`); the dispatcher verifies it there and only then moves it into
place, by rename with `overwrite` (the old file is replaced in one step) and by hard link without
(which fails rather than replace a file that appeared meanwhile). A failed or refused answer
removes the staging file, and the user's previous file was never touched. A process killed
mid-request leaves at most the hidden staging file: never an unverified file at the output path,
and no copy of the old one.
"""

from __future__ import annotations

import dataclasses
from contextlib import suppress
from types import TracebackType
from typing import Any

from dicom_hub.contract.errors import HubError
from dicom_hub.contract.files import move_into_place
from dicom_hub.contract.job import Job, Outcome


class StagedOutput:
    """Within the block the backend runs `job`, whose output is the staging file (when `active`
    and the request has an output); `publish` moves the verified file into place. On the way out
    the staging file is removed, and an error names the output, not the staging file."""

    def __init__(self, job: Job, active: bool) -> None:
        self.final = job.output if active else None
        self.job = job
        if self.final is not None:
            import secrets  # here: only requests that write a DICOM file stage it

            staging = self.final.with_name(f".{self.final.name}.{secrets.token_hex(4)}.staged{self.final.suffix}")
            self.job = dataclasses.replace(job, output=staging)

    def __enter__(self) -> StagedOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.final is None:
            return
        staging = self.job.output_path
        with suppress(OSError):  # nothing there, or no folder to hold it (the backend said why)
            staging.unlink()
        if isinstance(error, HubError):  # the user knows the output's name only
            error.message = self._named(error.message)
            error.hint = self._named(error.hint)

    def publish(self, outcome: Outcome) -> Outcome:
        """The outcome with its file at the output path (`output_exists` if a file appeared there
        meanwhile and the request did not ask to overwrite)."""
        if self.final is None:
            return outcome
        staging = str(self.job.output_path)
        if staging in outcome.output_files:
            move_into_place(self.job.output_path, self.final, self.job.overwrite)
        outcome.output_files = [str(self.final) if name == staging else name for name in outcome.output_files]
        outcome.metadata = self._named(outcome.metadata)
        return outcome

    def _named(self, value: Any) -> Any:
        """`value` (text, or JSON-like data holding text) with the staging file called by the
        output's name."""
        if isinstance(value, str):
            assert self.final is not None
            staging = self.job.output_path
            return value.replace(str(staging), str(self.final)).replace(staging.name, self.final.name)
        if isinstance(value, dict):
            return {key: self._named(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._named(item) for item in value]
        return value
