"""Writing a received instance to its place (`dicom_hub.contract.dicom.network.storage` says
where), atomically, once it is checked to be sound. Shared by the storage SCP and by `get`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.dicom.network.storage import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    UNSOUND,
    RejectedInstance,
    instance_path,
)
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.files import atomic_output

if TYPE_CHECKING:
    from pydicom import Dataset
    from pynetdicom.events import Event


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
            refuse_unsound(tmp)
    except HubError as err:
        raise RejectedInstance(OUT_OF_RESOURCES, err.message) from None
    except OSError as err:
        raise RejectedInstance(OUT_OF_RESOURCES, f"cannot write {path}: {err}") from None
    return StoredInstance(path, str(sop), str(request.AffectedSOPClassUID), str(event.context.transfer_syntax))


def refuse_unsound(written: Path) -> None:
    """A stored instance is one a reader can use: every element and sequence item parses, and
    Pixel Data holds at least what the image attributes call for (`adapters.verify`, the check
    every written file gets). Else the sender hears "cannot understand" and nothing is kept."""
    from dicom_hub.adapters.verify import verify_file

    problem = verify_file(written)
    if problem:
        raise RejectedInstance(CANNOT_UNDERSTAND, f"{UNSOUND}: {problem}")


def _received_file(event: Event) -> Path | None:
    """The temporary file pynetdicom streamed the data set into, when chunked receive is on."""
    try:
        path = event.dataset_path
    except AttributeError:
        return None
    return Path(path) if path else None
