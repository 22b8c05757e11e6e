"""The side files of a de-identification run (`mapping_file`, `key_file`) never touch its data.

The mapping file holds the originals and the key file the secret: written over the output, they
would publish exactly what de-identification removes; written over an input, they destroy it. So
before anything is written, each side file must be a different file from every input and output,
from the other side file, and (for folder inputs and outputs) lie outside those trees. The
dispatcher calls `check_side_files` for every request that names a side file, before any backend
runs (and before the output is redirected to a staging file, `adapters/staged_output.py`).
"""

from __future__ import annotations

import os
from pathlib import Path

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import special_file_kind
from dicom_hub.contract.job import Job

SIDE_FILE_OPTIONS = ("mapping_file", "key_file")


def check_side_files(job: Job) -> None:
    """`invalid_request` naming both paths when a side file collides with a data path or another side file."""
    sides = [(name, _resolved(job.option(name))) for name in SIDE_FILE_OPTIONS if job.option(name) is not None]
    for name, side in sides:
        special = special_file_kind(side)
        if special:  # reading a FIFO waits forever, /dev/zero never ends, writing a device is no file
            raise HubError(ErrorCode.INVALID_REQUEST, f"options.{name} {side} is a {special}, not a regular file", f"give options.{name} a regular file or a new path")
    data = [("input", _resolved(path)) for path in job.inputs]
    if job.output is not None:
        data.append(("output", _resolved(job.output)))
    for index, (name, side) in enumerate(sides):
        for other_name, other in data + sides[:index]:
            problem = _collision(side, other)
            if problem:
                raise HubError(
                    ErrorCode.INVALID_REQUEST,
                    f"options.{name} {side} {problem} the {_label(other_name)} {other}",
                    f"give options.{name} a path of its own, outside every input and output",
                )


def _collision(side: Path, other: Path) -> str | None:
    """How `side` collides with `other` ('is', 'is inside'), or None."""
    if side == other or (side.exists() and other.exists() and os.path.samefile(side, other)):
        return "is"
    if other in side.parents:  # a folder input, or the output folder (even before it exists)
        return "is inside"
    if side in other.parents:
        return "is a folder above"
    return None


def _label(name: str) -> str:
    return name if name in ("input", "output") else f"options.{name}"


def _resolved(path: str | Path) -> Path:
    """The absolute path with symbolic links followed (a link to the output is the output)."""
    return Path(path).expanduser().resolve()
