"""`qido`, `wado` and `stow`: find, get and store over DICOMweb (PS3.18), with the same meaning.

`qido` takes find's levels and query keys and asks for the same return keys (includefield), so
its DICOM JSON results line up with find's. `wado` writes what it retrieves where `get` would
(`<StudyUID>/<SeriesUID>/<SOPUID>.dcm`, UIDs checked, atomic). `stow` reads the files like `store`
and reports per file what the server answered (PS3.18 store response: referenced or failed SOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.network.query import LEVEL_KEYS, PARENT_KEYS
from dicom_hub.contract.dicom.network.storage import UNSOUND, RejectedInstance, check_root, instance_path
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .storage import refuse_unsound
from .store import FileToSend, collect_files, failure, scan, store_outcome
from .web_client import WebPeer, http_failure

if TYPE_CHECKING:
    from pydicom import Dataset

UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
_LEVEL_UIDS = {"STUDY": 1, "SERIES": 2, "IMAGE": 3}
QIDO_RESOURCES = {"STUDY": "studies", "SERIES": "series", "IMAGE": "instances"}


def attribute_id(key: str) -> str:
    """A query key as QIDO-RS names it: the keyword, or ggggeeee for a (gggg,eeee) tag."""
    return f"{key[1:5]}{key[6:10]}".upper() if key.startswith("(") else key


def qido_params(query: dict[str, Any], prefix: str = "") -> tuple[dict[str, str], list[str]]:
    """find's query as QIDO-RS search filters and includefields: '' or None asks for the value,
    a list (or a backslash-separated value) is a UID list (comma-separated in QIDO), an object
    matches inside a sequence (Sequence.Keyword)."""
    filters: dict[str, str] = {}
    fields: list[str] = []
    for key, value in query.items():
        name = prefix + attribute_id(key)
        if isinstance(value, dict):
            sub_filters, sub_fields = qido_params(value, name + ".")
            filters.update(sub_filters)
            fields.extend(sub_fields if sub_filters or sub_fields else [name])
        elif value is None or value == "" or value == []:
            fields.append(name)
        elif isinstance(value, list):
            filters[name] = ",".join(str(v) for v in value)
        else:
            text = str(value)
            filters[name] = text.replace("\\", ",") if key.endswith("UID") else text
    return filters, fields


def qido(job: Job) -> Outcome:
    peer = WebPeer(job)
    level = job.option("level")
    filters, fields = qido_params(job.option("query") or {})
    params: list[tuple[str, str]] = list(filters.items())
    params += [("includefield", f) for f in dict.fromkeys([*LEVEL_KEYS[level], *PARENT_KEYS[level], *fields])]
    if job.option("max_results"):
        params.append(("limit", str(job.option("max_results"))))
    if job.option("fuzzy"):
        params.append(("fuzzymatching", "true"))
    results = peer.call(f"QIDO-RS {level} search", lambda: peer.search(QIDO_RESOURCES[level], params))
    return Outcome(metadata={"level": level, "count": len(results), "results": results})


def wado_target(job: Job) -> tuple[str, list[str]]:
    level = job.option("level")
    query = job.option("query") or {}
    needed = UID_KEYS[: _LEVEL_UIDS[level]]
    missing = [k for k in needed if not query.get(k)]
    if missing:
        raise HubError(ErrorCode.INVALID_REQUEST, f"a {level} retrieve needs {', '.join(needed)} in options.query; missing {', '.join(missing)}", "search with qido to find the UIDs")
    extra = sorted(set(query) - set(needed))
    if extra:
        raise HubError(ErrorCode.INVALID_REQUEST, f"options.query has {', '.join(extra)}, which a {level} retrieve does not use", f"give only {', '.join(needed)} (or choose the level that uses them)")
    return level, [query[k] for k in needed]


def wado(job: Job) -> Outcome:
    assert job.output is not None  # the catalog makes output required
    level, uids = wado_target(job)
    root = check_root(job.output)
    peer = WebPeer(job)
    retrievers: dict[str, Callable[..., Any]] = {"STUDY": peer.client.retrieve_study, "SERIES": peer.client.retrieve_series, "IMAGE": peer.client.retrieve_instance}
    retrieve = retrievers[level]
    found = peer.call(f"WADO-RS {level} retrieve", lambda: retrieve(*uids))
    datasets = found if isinstance(found, list) else [found]
    written: list[Path] = []
    refused: list[dict[str, str]] = []
    for ds in datasets:
        try:
            written.append(save_dataset(ds, root, job.overwrite))
        except (RejectedInstance, HubError) as err:
            reason = err.message if isinstance(err, HubError) else str(err)
            refused.append({"sop_instance_uid": str(ds.get("SOPInstanceUID", ""))[:80], "reason": reason})
    if refused and not written:
        raise _nothing_written(root, refused)
    metadata = {"level": level, "received": len(datasets), "completed": len(written), "failed": len(refused), "refused": refused}
    stderr = "".join(f"refused {r['sop_instance_uid']}: {r['reason']}\n" for r in refused)
    return Outcome(metadata=metadata, output_files=[str(p) for p in written], stderr=stderr)


def _nothing_written(root: Path, refused: list[dict[str, str]]) -> HubError:
    """Every retrieved instance refused: already there, unusable as sent, or not writable."""
    reason = refused[0]["reason"]
    if all(r["reason"].startswith("output exists") for r in refused):
        return HubError(ErrorCode.OUTPUT_EXISTS, f"no instance written to {root}: {reason}", "set options.overwrite to true")
    if all(r["reason"].startswith(UNSOUND) for r in refused):
        return HubError(ErrorCode.DECODE_ERROR, f"no instance written to {root}: {reason}", "the server holds damaged data: ask its administrator, or retrieve the instances one by one to see which")
    return HubError(ErrorCode.OUTPUT_ERROR, f"no instance written to {root}: {reason}", "see the reason")


def save_dataset(ds: Dataset, root: Path, overwrite: bool) -> Path:
    """Write a retrieved instance to its place under `root` (the UIDs checked, atomically),
    only if it is sound (`storage.refuse_unsound`, as the SCP and `get`)."""
    path = instance_path(root, ds.get("StudyInstanceUID"), ds.get("SeriesInstanceUID"), ds.get("SOPInstanceUID"))
    with atomic_output(path, overwrite) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
        refuse_unsound(tmp)
    return path


def stow(job: Job) -> Outcome:
    from pydicom import dcmread

    peer = WebPeer(job)
    items = [scan(p) for p in collect_files(job.inputs, bool(job.option("recursive")))]
    sendable = [i for i in items if i.result is None]
    size = int(job.option("batch_size"))
    for start in range(0, len(sendable), size):
        if peer.out_of_time():
            raise HubError(ErrorCode.TIMEOUT, f"STOW-RS to {peer.url} did not finish within options.timeout ({start} of {len(sendable)} files sent)", "raise options.timeout")
        batch: list[tuple[FileToSend, Dataset]] = []
        for item in sendable[start : start + size]:
            try:
                batch.append((item, dcmread(item.path)))
            except Exception as err:
                item.result = failure(item.path, "unreadable", f"cannot read: {type(err).__name__}: {err}")
        if batch:
            answer = store_batch(peer, [ds for _, ds in batch])
            for item, _ in batch:
                item.result = stow_result(item, answer)
    return store_outcome([i.result for i in items if i.result is not None], f"at {peer.url}")


def store_batch(peer: WebPeer, datasets: list[Dataset]) -> Dataset:
    """POST the data sets; the store response, also when the server answers 409 (some failed)
    with a response body that says which."""
    import requests
    from pydicom import Dataset as DS

    try:
        return peer.call("STOW-RS store", lambda: _post_keeping_conflicts(peer, datasets))
    except _Conflict as conflict:
        try:
            return DS.from_json(conflict.response.json())
        except (ValueError, requests.JSONDecodeError):
            raise http_failure(peer, "STOW-RS store", conflict.response) from None


class _Conflict(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, response: Any) -> None:
        super().__init__("409")
        self.response = response


def _post_keeping_conflicts(peer: WebPeer, datasets: list[Dataset]) -> Dataset:
    import requests

    try:
        return peer.client.store_instances(datasets)
    except requests.HTTPError as err:
        if err.response is not None and err.response.status_code == 409:
            raise _Conflict(err.response) from None
        raise


def stow_result(item: FileToSend, answer: Dataset) -> dict[str, Any]:
    """What the store response says of one file: referenced (maybe with a warning) or failed."""
    base = {"file": str(item.path), "sop_instance_uid": item.sop_instance, "transfer_syntax": item.transfer_syntax}
    for entry in answer.get("FailedSOPSequence", []):
        if str(entry.get("ReferencedSOPInstanceUID", "")) == item.sop_instance:
            code = int(entry.get("FailureReason", 0xC000))
            return {**base, "status": code, "status_hex": f"0x{code:04X}", "category": "Failure", "text": "refused by the server (Failure Reason)"}
    for entry in answer.get("ReferencedSOPSequence", []):
        if str(entry.get("ReferencedSOPInstanceUID", "")) == item.sop_instance:
            code = int(entry.get("WarningReason", 0) or 0)
            category = "Warning" if code else "Success"
            return {**base, "status": code, "status_hex": f"0x{code:04X}", "category": category, "text": "stored" if not code else "stored with a warning"}
    return {**base, "status": None, "status_hex": None, "category": "Failure", "reason": "unknown", "text": "the store response does not mention this instance"}
