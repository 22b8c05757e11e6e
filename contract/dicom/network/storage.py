"""Where received instances go: `<root>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`.

Shared by the Python storage SCP, `get` (Python and DCMTK) and `wado`. Each path component comes
from the peer, so it must be a valid UID (digits and dots, at most 64 characters): `../../x` or
`a/b` is refused, never sanitised into something that could still escape the folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dicom_hub.contract.errors import ErrorCode, HubError

# C-STORE statuses we answer with (PS3.4 Annex B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")  # PS3.5 section 9.1


# How the refusal of a received instance that is not sound begins (it does not parse completely,
# or its Pixel Data is too short: `adapters.verify.verify_file`); every receiving path says it so.
UNSOUND = "the data set is not sound"


class RejectedInstance(ValueError):
    """The instance cannot be stored: `status` is the C-STORE status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def checked_uid(value: object, name: str) -> str:
    """`value` if it is a valid UID, else `RejectedInstance` (so it can never be a path trick)."""
    text = str(value or "").rstrip("\0 ")
    if len(text) > 64 or not _UID.fullmatch(text):
        raise RejectedInstance(CANNOT_UNDERSTAND, f"{name} {str(value)[:80]!r} is not a valid UID")
    return text


def instance_path(root: Path, study: object, series: object, sop: object) -> Path:
    """The file for one instance, guaranteed to lie inside `root`."""
    parts = (checked_uid(study, "StudyInstanceUID"), checked_uid(series, "SeriesInstanceUID"), checked_uid(sop, "SOPInstanceUID"))
    path = root.joinpath(parts[0], parts[1], parts[2] + ".dcm")
    # Belt and braces: a valid UID has no separators, but never trust one check for a path.
    if os.path.commonpath([root.resolve(), path.resolve()]) != str(root.resolve()):
        raise RejectedInstance(CANNOT_UNDERSTAND, f"instance path {path} would leave {root}")
    return path


def check_root(root: Path) -> Path:
    """Create the output folder (or fail with `output_error` before any association is opened)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot create output folder {root}: {err}", "choose a writable folder") from None
    if not os.access(root, os.W_OK):
        raise HubError(ErrorCode.OUTPUT_ERROR, f"output folder is not writable: {root}", "choose a writable folder")
    return root.resolve()
