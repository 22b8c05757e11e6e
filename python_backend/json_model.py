"""`to_json` / `from_json`: the DICOM JSON Model (PS3.18 Annex F), through pydicom's own codec.

pydicom's `Dataset.to_json_dict` / `Dataset.from_json` do the element encoding; this module only
adds the contract around them: bulk data inline or left out, group 0002 kept on request (as
ordinary top-level tags, so the document stays a valid JSON Model object), atomic output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.json_model import BULK_THRESHOLD, drop_elements, special_numbers_as_strings
from dicom_hub.contract.dicom.part10 import read_dataset, write_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.dataelem import DataElement

_OMITTED = "dicom-hub:omitted"  # marker URI, removed before the document is returned


def to_json(job: Job) -> Outcome:
    ds = read_dataset(job.input)
    omit = job.option("bulk_data") == "omit"
    document = dataset_to_json(ds, include_file_meta=bool(job.option("include_file_meta", False)), omit_bulk=omit)
    omitted = drop_elements(document, lambda entry: entry.get("BulkDataURI") == _OMITTED) if omit else []
    metadata: dict[str, Any] = {"element_count": len(document), "omitted": omitted}
    if job.output is None:
        metadata["dataset"] = document
        return Outcome(metadata=metadata)
    indent = job.option("indent")
    with atomic_output(job.output, job.overwrite) as tmp:
        tmp.write_text(json.dumps(document, indent=indent, allow_nan=False), encoding="utf-8")
    return Outcome(metadata=metadata, output_files=[str(job.output)])


def dataset_to_json(ds: Dataset, *, include_file_meta: bool = False, omit_bulk: bool = False) -> dict[str, Any]:
    """The JSON Model dict of `ds` (group 0002 first when asked); encoding errors are `decode_error`."""
    kwargs: dict[str, Any] = {}
    if omit_bulk:
        kwargs = {"bulk_data_threshold": _base64_length(BULK_THRESHOLD), "bulk_data_element_handler": _mark_omitted}
    document: dict[str, Any] = {}
    try:
        meta = getattr(ds, "file_meta", None)
        if include_file_meta and meta is not None:
            document.update(meta.to_json_dict(**kwargs))
        document.update(ds.to_json_dict(**kwargs))
    except Exception as err:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"cannot express element {_failing_tag(ds, kwargs)} in the JSON Model: {type(err).__name__}: {err}",
            "the file holds a value its VR does not allow; `validate` lists such problems",
        ) from None
    special_numbers_as_strings(document)
    return document


def _failing_tag(ds: Dataset, kwargs: dict[str, Any]) -> str:
    """Which top-level element pydicom could not encode (searched only after a failure)."""
    for elem in [*getattr(ds, "file_meta", []), *ds]:
        try:
            elem.to_json_dict(kwargs.get("bulk_data_element_handler"), kwargs.get("bulk_data_threshold", 1024))
        except Exception:
            return f"({elem.tag.group:04X},{elem.tag.element:04X}) {elem.keyword or 'private'} {elem.VR}"
    return "(unknown)"


def _base64_length(size: int) -> int:
    # pydicom compares its threshold with the raw length scaled by 3/4 (the base64 ratio).
    return size * 4 // 3


def _mark_omitted(elem: DataElement) -> str:
    return _OMITTED


def from_json(job: Job) -> Outcome:
    try:
        document = json.loads(job.input.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"{job.input.name} is not JSON: {err}", "the input must be a DICOM JSON Model document") from None
    if isinstance(document, list) and len(document) == 1:
        document = document[0]  # DICOMweb answers are arrays of data sets
    if not isinstance(document, dict):
        raise HubError(ErrorCode.DECODE_ERROR, f"{job.input.name} is not one JSON Model data set", "give a JSON object keyed by tags such as \"00100010\"")
    ds = dataset_from_json(document, job.option("transfer_syntax"))
    missing = [kw for kw in _MEDIA_UIDS if not ds.file_meta.get(kw)]
    if not missing:
        from pydicom.dataset import validate_file_meta

        validate_file_meta(ds.file_meta, enforce_standard=True)  # adds version and implementation UID
    # Written as given (pydicom's enforce mode would rewrite group 0002 values from the data set);
    # without SOP Class/Instance UIDs the file cannot conform, and the answer says so.
    ds.preamble = b"\x00" * 128
    write_dataset(ds, job.output_path, overwrite=job.overwrite, enforce_file_format=False)
    warnings = [f"the document has no {kw} (nor its SOP UID): the file is not a conformant Part 10 file" for kw in missing]
    uris = _bulk_uris(document)
    if uris:
        warnings.append(f"{len(uris)} element(s) refer to bulk data by URI and were written empty: {', '.join(uris[:5])}")
    return Outcome(
        metadata={"element_count": len(ds) + len(ds.file_meta), "transfer_syntax": str(ds.file_meta.TransferSyntaxUID), "warnings": warnings},
        output_files=[str(job.output)],
    )


def _bulk_uris(document: dict[str, Any], prefix: str = "") -> list[str]:
    """Tag paths of elements given as BulkDataURI (not fetched: this op reads no network)."""
    found = []
    for tag, entry in document.items():
        if not isinstance(entry, dict):
            continue
        if "BulkDataURI" in entry:
            found.append(prefix + tag)
        elif entry.get("vr") == "SQ":
            for index, item in enumerate(entry.get("Value") or []):
                if isinstance(item, dict):
                    found += _bulk_uris(item, f"{prefix}{tag}[{index}].")
    return found


_MEDIA_UIDS = {"MediaStorageSOPClassUID": "SOPClassUID", "MediaStorageSOPInstanceUID": "SOPInstanceUID"}


def dataset_from_json(document: dict[str, Any], transfer_syntax: str | None = None) -> Dataset:
    """A Dataset ready for a Part 10 file: group 0002 moved to file_meta, TS and media UIDs filled in."""
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian
    from pydicom.valuerep import VR

    try:
        ds = Dataset.from_json(document)
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"not a valid DICOM JSON Model document: {type(err).__name__}: {err}", "see PS3.18 Annex F") from None
    bad = [f"{e.tag.group:04X}{e.tag.element:04X}: {e.VR!r}" for e in ds.iterall() if e.VR not in VR.__members__]
    if bad:
        raise HubError(ErrorCode.DECODE_ERROR, f"unknown VR in the document: {', '.join(bad[:5])}", "every element needs a VR from PS3.5 6.2")
    meta = FileMetaDataset()
    for elem in [e for e in ds if e.tag.group == 0x0002]:
        meta.add(elem)
        del ds[elem.tag]
    given = meta.get("TransferSyntaxUID")
    if transfer_syntax and given and str(given) != transfer_syntax:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"options.transfer_syntax {transfer_syntax} contradicts the document's (0002,0010) {given}",
            "drop the option, or remove group 0002 from the document",
        )
    ts = UID(str(given) if given else transfer_syntax or ExplicitVRLittleEndian)
    if not ts.is_transfer_syntax:
        raise HubError(ErrorCode.INVALID_REQUEST, f"unknown transfer syntax {ts}", "use a transfer syntax UID from PS3.6, e.g. 1.2.840.10008.1.2.1")
    if not given:
        meta.TransferSyntaxUID = ts
    for meta_kw, kw in _MEDIA_UIDS.items():
        if meta_kw not in meta and ds.get(kw):
            setattr(meta, meta_kw, ds[kw].value)
    ds.file_meta = meta
    return ds
