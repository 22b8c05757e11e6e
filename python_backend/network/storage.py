"""Where received instances go: `<root>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm`, written atomically.

Shared by the storage SCP and by `get`. Each path component comes from the peer, so it must be a
valid UID (digits and dots, at most 64 characters): `../../x` or `a/b` is refused, never
sanitised into something that could still escape the folder.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output

if TYPE_CHECKING:
    from pydicom import Dataset
    from pynetdicom.events import Event

# C-STORE statuses we answer with (PS3.4 Annex B.2.3).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")  # PS3.5 section 9.1


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


@dataclass(frozen=True)
class StoredInstance:
    path: Path
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str


def save_received(event: Event, root: Path, overwrite: bool) -> StoredInstance:
    """Write the instance of a C-STORE request event to its place under `root`, as sent (no re-encoding).

    With pynetdicom's chunked receive (the SCP) the data set is already in a temporary Part 10
    file: only its UIDs are parsed and the file is copied, so an instance is never held whole in memory.
    """
    from pynetdicom.dimse_primitives import C_STORE

    request = event.request
    assert isinstance(request, C_STORE), "save_received handles C-STORE request events"
    received = _received_file(event)
    ds: Dataset
    try:
        if received is not None:
            from pydicom import dcmread

            ds = dcmread(received, defer_size=1024, specific_tags=["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
        else:
            ds = event.dataset  # element values are converted lazily: only the UIDs below are decoded
        sop = ds.get("SOPInstanceUID", request.AffectedSOPInstanceUID)
        study, series = ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID")
    except Exception as err:  # a data set that does not parse in the negotiated transfer syntax
        raise RejectedInstance(CANNOT_UNDERSTAND, f"cannot parse the data set: {type(err).__name__}: {err}") from None
    if str(sop) != str(request.AffectedSOPInstanceUID):
        raise RejectedInstance(CANNOT_UNDERSTAND, "SOPInstanceUID of the data set differs from the request's Affected SOP Instance UID")
    path = instance_path(root, study, series, sop)
    try:
        with atomic_output(path, overwrite) as tmp:
            if received is not None:
                shutil.copyfile(received, tmp)
            else:
                tmp.write_bytes(event.encoded_dataset(include_meta=True))
    except HubError as err:
        raise RejectedInstance(OUT_OF_RESOURCES, err.message) from None
    except OSError as err:
        raise RejectedInstance(OUT_OF_RESOURCES, f"cannot write {path}: {err}") from None
    return StoredInstance(path, str(sop), str(request.AffectedSOPClassUID), str(event.context.transfer_syntax))


def _received_file(event: Event) -> Path | None:
    """The temporary file pynetdicom streamed the data set into, when chunked receive is on."""
    try:
        path = event.dataset_path
    except AttributeError:
        return None
    return Path(path) if path else None


def check_root(root: Path) -> Path:
    """Create the output folder (or fail with `output_error` before any association is opened)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot create output folder {root}: {err}", "choose a writable folder") from None
    if not os.access(root, os.W_OK):
        raise HubError(ErrorCode.OUTPUT_ERROR, f"output folder is not writable: {root}", "choose a writable folder")
    return root.resolve()
