"""`move` and `get`: C-MOVE to another AE, and C-GET into a local folder.

C-GET needs a storage context for every SOP class the peer will send, negotiated up front with
the SCP role for us. A C-FIND at IMAGE level with the same keys tells which classes match; when
that finds nothing (or the peer does not answer SOPClassUID), the common storage classes are
proposed instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.query import PARENT_KEYS, build_query, retrieve_query
from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.dicom.network.storage import RejectedInstance, check_root
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from ._association import MAX_CONTEXTS, Peer, associate, dimse_failure
from .query import information_model, run_find
from .storage import save_received

if TYPE_CHECKING:
    from pydicom import Dataset

COUNTERS = {
    "completed": "NumberOfCompletedSuboperations",
    "failed": "NumberOfFailedSuboperations",
    "warning": "NumberOfWarningSuboperations",
    "remaining": "NumberOfRemainingSuboperations",
}
# Transfer syntaxes offered for incoming instances during C-GET: files are stored as received.
GET_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
)


def run_retrieve(peer: Peer, responses: Iterable[tuple[Dataset, Dataset | None]], service: str) -> dict[str, Any]:
    """Follow the pending responses of a C-MOVE/C-GET to the final status; counts and status info."""
    final: Dataset | None = None
    failed_uids: list[str] = []
    for status, identifier in responses:
        final = status
        if status is None or "Status" not in status:
            break
        if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
            value = identifier.FailedSOPInstanceUIDList
            failed_uids.extend([value] if isinstance(value, str) else list(value))
        peer.check_deadline(service)
    info = status_info(final, service)
    counts = {name: int(final.get(keyword, 0) or 0) if final is not None else 0 for name, keyword in COUNTERS.items()}
    if info["category"] in ("Failure", "No response") or (counts["completed"] == 0 and counts["failed"] > 0):
        error = dimse_failure(peer, service, final)
        error.message += f" (completed {counts['completed']}, failed {counts['failed']}, warning {counts['warning']})"
        raise error
    return {**counts, **info, "failed_sop_instance_uids": failed_uids}


def move(job: Job) -> Outcome:
    from pynetdicom.presentation import build_context

    peer = Peer.from_job(job)
    model = information_model(job, "move")
    level, query = retrieve_query(job)
    destination = job.option("destination")
    with associate(peer, [build_context(model)]) as assoc:
        result = run_retrieve(peer, assoc.send_c_move(query, destination, model), "C-MOVE")
    return Outcome(metadata={"level": level, "destination": destination, **result})


def sop_classes_to_get(peer: Peer, job: Job, level: str) -> list[str]:
    """The SOP classes of the matching instances (C-FIND at IMAGE level), else the common ones."""
    from pynetdicom.presentation import StoragePresentationContexts

    query = build_query("IMAGE", ("SOPClassUID", *PARENT_KEYS["IMAGE"]), job.option("query") or {})
    if job.option("model") == "patient" or level == "PATIENT":
        query.PatientID = query.get("PatientID", "")
    found: list[str] = []
    try:
        find_model = information_model(job, "find")
        results, _ = run_find(peer, find_model, query, "C-FIND", None)
        found = list(dict.fromkeys(r["00080016"]["Value"][0] for r in results if r.get("00080016", {}).get("Value")))
    except HubError:
        pass
    if not found:
        found = [cx.abstract_syntax for cx in StoragePresentationContexts if cx.abstract_syntax is not None]
    return found[: MAX_CONTEXTS - 1]


def get(job: Job) -> Outcome:
    from pynetdicom import evt
    from pynetdicom.presentation import build_context, build_role

    assert job.output is not None  # the catalog makes output required
    root = check_root(job.output)
    peer = Peer.from_job(job)
    model = information_model(job, "get")
    level, query = retrieve_query(job)
    classes = sop_classes_to_get(peer, job, level)
    contexts = [build_context(model), *(build_context(sop, list(GET_SYNTAXES)) for sop in classes)]
    roles = [build_role(sop, scp_role=True) for sop in classes]
    received: list[Path] = []
    refused: list[dict[str, str]] = []

    def on_store(event: Any) -> int:
        try:
            received.append(save_received(event, root, job.overwrite).path)
            return 0x0000
        except RejectedInstance as err:
            refused.append({"sop_instance_uid": str(event.request.AffectedSOPInstanceUID)[:80], "reason": str(err)})
            return err.status

    try:
        with associate(peer, contexts, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            result = run_retrieve(peer, assoc.send_c_get(query, model), "C-GET")
    except HubError as err:
        if refused and not received and all(r["reason"].startswith("output exists") for r in refused):
            raise HubError(ErrorCode.OUTPUT_EXISTS, f"every instance is already in {root}: {refused[0]['reason']}", "set options.overwrite to true") from None
        if refused and not received:
            err.message += f"; we refused {len(refused)} instance(s): {refused[0]['reason']}"
        raise err
    stderr = "".join(f"refused {r['sop_instance_uid']}: {r['reason']}\n" for r in refused)
    return Outcome(
        metadata={"level": level, **result, "received": len(received), "refused": refused},
        output_files=[str(p) for p in received],
        stderr=stderr,
    )
