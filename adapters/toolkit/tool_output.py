"""Turning what an external tool printed into a contract answer.

Tools that exit 0 on failure (PixelMed) or with one exit code for many causes (dicom-rs) are judged
by their stderr text: a table of `ErrorRule`s per adapter maps message patterns to error codes.
A text dump becomes the `dump` op's answer with `text_outcome`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_hub.adapters.subprocess_adapter import ToolRun
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome


@dataclass(frozen=True)
class ErrorRule:
    """stderr matching `pattern` means this contract error code."""

    pattern: str
    code: ErrorCode
    hint: str | None = None

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text, re.IGNORECASE | re.MULTILINE) is not None


def classify(text: str, rules: tuple[ErrorRule, ...], default: ErrorCode = ErrorCode.BACKEND_ERROR) -> tuple[ErrorCode, str | None]:
    """The code (and hint) of the first rule whose pattern occurs in `text`."""
    for rule in rules:
        if rule.matches(text):
            return rule.code, rule.hint
    return default, None


def tool_error(run: ToolRun, message: str, rules: tuple[ErrorRule, ...], default: ErrorCode = ErrorCode.BACKEND_ERROR) -> HubError:
    """A HubError for a failed run: code from the stderr rules, the tool's output kept."""
    code, hint = classify(run.stderr + "\n" + run.stdout, rules, default)
    detail = run.explanation()
    return HubError(
        code,
        f"{message}: {detail}" if detail else message,
        hint or "see stderr for the tool's messages",
        stdout=run.stdout,
        stderr=run.stderr,
        returncode=run.returncode,
    )


def text_outcome(job: Job, text: str, elements: list[dict[str, Any]], stderr: str = "") -> Outcome:
    """The `dump` answer: the text on stdout (or written to the output) and the parsed elements."""
    metadata = {"elements": elements, "element_count": len(elements)}
    if job.output is None:
        return Outcome(metadata=metadata, stdout=text, stderr=stderr)
    with atomic_output(job.output, job.overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Outcome(metadata=metadata, output_files=[str(job.output)], stderr=stderr)


def pixel_module(path: Path) -> dict[str, Any]:
    """The attributes that decide whether a tool can handle a file's pixels (read with pydicom)."""
    from dicom_hub.contract.pixel_size import number_of_frames
    from pydicom import dcmread

    keys = ("SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "BitsAllocated", "PixelRepresentation")
    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(keys), force=True)
        found: dict[str, Any] = {key: ds.get(key) for key in keys}
        meta = getattr(ds, "file_meta", None)
        found["TransferSyntaxUID"] = str(meta.TransferSyntaxUID) if meta is not None and "TransferSyntaxUID" in meta else None
    except Exception:  # unreadable (truncated, a value pydicom cannot convert): nothing known, the tool decides
        return {**dict.fromkeys(keys), "TransferSyntaxUID": None, "NumberOfFrames": 1}
    found["NumberOfFrames"] = number_of_frames(found["NumberOfFrames"], path.name)
    return found


def check_frame(job: Job, frames: int) -> None:
    """`frame` must name one of the file's frames (numbered from 0)."""
    frame = int(job.option("frame", 0))  # stats has no frame default (all frames): frame 0 must exist
    if frame >= frames:
        raise HubError(ErrorCode.INVALID_REQUEST, f"frame {frame} does not exist: the file has {frames} frame(s), numbered from 0", "`info` shows NumberOfFrames")
