"""`find` and `worklist`: C-FIND in the Query/Retrieve and Modality Worklist models.

The identifiers come from `dicom_hub.contract.dicom.network.query` (the keys every backend sends);
results are returned in the DICOM JSON Model (PS3.18 Annex F).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.query import find_query, query_model, worklist_query
from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from ._association import Peer, associate, dimse_failure

if TYPE_CHECKING:
    from pydicom import Dataset

FIND_MESSAGE_ID = 1  # C-CANCEL names the request it cancels by this id

MODELS = {
    # (model, service) -> pynetdicom SOP class name
    ("study", "find"): "StudyRootQueryRetrieveInformationModelFind",
    ("patient", "find"): "PatientRootQueryRetrieveInformationModelFind",
    ("study", "move"): "StudyRootQueryRetrieveInformationModelMove",
    ("patient", "move"): "PatientRootQueryRetrieveInformationModelMove",
    ("study", "get"): "StudyRootQueryRetrieveInformationModelGet",
    ("patient", "get"): "PatientRootQueryRetrieveInformationModelGet",
}


def information_model(job: Job, service: str) -> str:
    """The SOP class UID of the query model: patient root at PATIENT level unless told otherwise."""
    from pynetdicom import sop_class

    level = job.option("level")
    model = query_model(job)
    if model == "study" and level == "PATIENT":
        raise HubError(ErrorCode.INVALID_REQUEST, "the study root model has no PATIENT level", "use model 'patient' (the default at PATIENT level)")
    return getattr(sop_class, MODELS[(model, service)])


def run_find(peer: Peer, model: str, query: Dataset, service: str, max_results: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send one C-FIND; the matches as DICOM JSON and the final status."""
    from pynetdicom.presentation import build_context

    results: list[dict[str, Any]] = []
    final = None
    with associate(peer, [build_context(model)]) as assoc:
        cancelled = False
        for status, identifier in assoc.send_c_find(query, model, msg_id=FIND_MESSAGE_ID):
            final = status
            if status is None or "Status" not in status:
                break
            if status.Status in (0xFF00, 0xFF01) and identifier is not None and not cancelled:
                results.append(identifier.to_json_dict())
                if max_results and len(results) >= max_results:
                    assoc.send_c_cancel(FIND_MESSAGE_ID, query_model=model)
                    cancelled = True
            peer.check_deadline(service)
    info = status_info(final, service)
    if info["category"] not in ("Success", "Cancel", "Pending"):
        raise dimse_failure(peer, service, final)
    return results, info


def find(job: Job) -> Outcome:
    peer = Peer.from_job(job)
    level = job.option("level")
    model = information_model(job, "find")
    results, info = run_find(peer, model, find_query(job), "C-FIND", job.option("max_results"))
    return Outcome(metadata={"level": level, "count": len(results), "results": results, **info})


def worklist(job: Job) -> Outcome:
    from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]  # pynetdicom makes its SOP class names at import

    peer = Peer.from_job(job)
    results, info = run_find(peer, ModalityWorklistInformationFind, worklist_query(job), "worklist C-FIND", job.option("max_results"))
    return Outcome(metadata={"count": len(results), "results": results, **info})
