"""`modify_tags`: set, add or delete elements of a copy of the input, values checked against the VR.

Tags are named by keyword (`PatientName`) or as `(gggg,eeee)`; the VR comes from the element
already in the file, else from the dictionary, else from `options.vr` (private tags). Values
go through pydicom's own VR validators before anything is written.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset, write_dataset
from dicom_hub.contract.dicom.tags import TAG_TEXT, parse_tag
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.tag import BaseTag

_NUMBER_RANGES = {
    "US": (0, 0xFFFF),
    "SS": (-0x8000, 0x7FFF),
    "UL": (0, 0xFFFFFFFF),
    "SL": (-0x80000000, 0x7FFFFFFF),
    "UV": (0, 2**64 - 1),
    "SV": (-(2**63), 2**63 - 1),
}
_FLOAT_VRS = frozenset({"FL", "FD"})
_BYTES_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_STRING_VRS = frozenset({"DS", "IS"})


def modify_tags(job: Job) -> Outcome:
    ds = read_dataset(job.input)
    vr_overrides = {parse_tag(name): vr for name, vr in (job.option("vr") or {}).items()}
    to_set = {parse_tag(name): (name, value) for name, value in (job.option("set") or {}).items()}
    to_delete = {parse_tag(name): name for name in job.option("delete") or []}
    both = sorted(set(to_set) & set(to_delete))
    if both:
        raise HubError(ErrorCode.INVALID_REQUEST, f"tag {to_set[both[0]][0]} is both set and deleted", "list each tag in 'set' or in 'delete', not both")
    if not to_set and not to_delete:
        raise HubError(ErrorCode.INVALID_REQUEST, "nothing to modify", "give options.set and/or options.delete")
    created: list[str] = []
    changed: list[str] = []
    for tag, (name, value) in to_set.items():
        target = _target(ds, tag)
        vr = _vr_for(target, tag, name, vr_overrides)
        (changed if tag in target else created).append(_tag_text(tag))
        target.add_new(tag, vr, check_value(name, tag, vr, value))
    deleted, absent = [], []
    for tag in to_delete:
        target = _target(ds, tag)
        if tag in target:
            del target[tag]
            deleted.append(_tag_text(tag))
        else:
            absent.append(_tag_text(tag))
    _sync_media_uids(ds, to_set)
    write_dataset(ds, job.output_path, overwrite=job.overwrite)
    metadata = {"created": created, "changed": changed, "deleted": deleted, "not_present": absent}
    return Outcome(metadata=metadata, output_files=[str(job.output)])


def _tag_text(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _target(ds: Dataset, tag: BaseTag) -> Dataset:
    """Group 0002 lives in the file meta."""
    if tag.group == 0x0002:
        if tag.element == 0x0010:
            raise HubError(ErrorCode.INVALID_REQUEST, "the transfer syntax cannot be changed by modify_tags", "use the transcode op to change (0002,0010)")
        if getattr(ds, "file_meta", None) is None:
            from pydicom.dataset import FileMetaDataset

            ds.file_meta = FileMetaDataset()
        return ds.file_meta
    return ds


def _vr_for(target: Dataset, tag: BaseTag, name: str, overrides: dict[BaseTag, str]) -> str:
    from pydicom.datadict import dictionary_VR
    from pydicom.valuerep import VR

    if tag in overrides:
        vr = overrides[tag]
        if vr not in VR.__members__:
            raise HubError(ErrorCode.INVALID_REQUEST, f"options.vr for {name}: {vr!r} is not a VR", "use a VR from PS3.5 6.2, e.g. LO, DS, US")
        return vr
    if tag.is_private_creator:
        return "LO"
    if tag in target and target[tag].VR not in ("UN", "US or SS", "OB or OW", "US or OW", "US or SS or OW"):
        return target[tag].VR
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"tag {name} is not in the DICOM dictionary, its VR is unknown",
            f'give its VR in options.vr, e.g. {{"{_tag_text(tag)}": "LO"}}',
        ) from None
    if " or " in vr:
        raise HubError(ErrorCode.INVALID_REQUEST, f"tag {name} has VR {vr!r} in the dictionary", f'choose one in options.vr, e.g. {{"{name}": "{vr.split()[0]}"}}')
    return vr


def check_value(name: str, tag: BaseTag, vr: str, value: Any) -> Any:
    """The value in the form pydicom stores for `vr`, or `invalid_request` naming tag, VR and value."""
    from pydicom import config
    from pydicom.datadict import dictionary_VM
    from pydicom.valuerep import validate_value

    if value is None or value == []:
        return None
    if vr == "SQ":
        raise _bad(name, tag, vr, value, "sequences cannot be set from a value; delete the sequence or use from_json")
    if vr in _BYTES_VRS:
        return _bytes_value(name, tag, vr, value)
    items = value if isinstance(value, list) else [value]
    if vr in ("LT", "ST", "UT", "UR") and len(items) > 1:
        raise _bad(name, tag, vr, value, f"VR {vr} holds a single value")
    try:
        spec = dictionary_VM(tag)
    except KeyError:
        spec = None
    if spec and spec.isdigit() and len(items) != int(spec):
        raise _bad(name, tag, vr, value, f"the dictionary's VM is {spec}, got {len(items)} value(s)")
    converted = [_one_value(name, tag, vr, item) for item in items]
    for item in converted:
        try:
            validate_value(vr, str(item) if vr in ("PN",) else item, config.RAISE)
        except ValueError as err:
            raise _bad(name, tag, vr, value, str(err)) from None
    return converted if len(converted) > 1 else converted[0]


def _one_value(name: str, tag: BaseTag, vr: str, item: Any) -> Any:
    if isinstance(item, bool | list | dict):
        raise _bad(name, tag, vr, item, "values are strings or numbers")
    if vr in _NUMBER_RANGES:
        low, high = _NUMBER_RANGES[vr]
        if not isinstance(item, int) or not low <= item <= high:
            raise _bad(name, tag, vr, item, f"VR {vr} holds whole numbers from {low} to {high}")
        return item
    if vr in _FLOAT_VRS:
        if not isinstance(item, int | float):
            raise _bad(name, tag, vr, item, f"VR {vr} holds numbers")
        return float(item)
    if vr == "AT":
        text = str(item)
        if not TAG_TEXT.match(text):
            raise _bad(name, tag, vr, item, "VR AT holds a tag written as (gggg,eeee)")
        return parse_tag(text)
    if vr in _NUMBER_STRING_VRS and isinstance(item, int | float):
        from pydicom.valuerep import format_number_as_ds

        item = format_number_as_ds(float(item)) if vr == "DS" and isinstance(item, float) else str(item)
    if not isinstance(item, str):
        raise _bad(name, tag, vr, item, f"VR {vr} holds text")
    return item


def _bytes_value(name: str, tag: BaseTag, vr: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad(name, tag, vr, value, f"VR {vr} values are given as base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise _bad(name, tag, vr, value, f"VR {vr} values are given as base64 text") from None


def _bad(name: str, tag: BaseTag, vr: str, value: Any, why: str) -> HubError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return HubError(ErrorCode.INVALID_REQUEST, f"bad value for {name} {_tag_text(tag)} (VR {vr}): {shown}: {why}", "fix the value in options.set")


def _sync_media_uids(ds: Dataset, to_set: dict[BaseTag, tuple[str, Any]]) -> None:
    """A new SOP Class/Instance UID must also be the file meta's, or the file contradicts itself."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    for tag, meta_kw, kw in ((0x00080016, "MediaStorageSOPClassUID", "SOPClassUID"), (0x00080018, "MediaStorageSOPInstanceUID", "SOPInstanceUID")):
        if tag in to_set and ds.get(kw):
            setattr(meta, meta_kw, ds[kw].value)
