"""`validate`: structural checks of one file, reported as findings rather than failures.

An invalid file is a successful answer (`valid: false`); only a file that cannot be read at all
fails the op (`not_dicom` / `decode_error`). Value checks use pydicom's own VR validators
(`pydicom.valuerep.validate_value`), so "valid" means what pydicom means by it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.dataelem import DataElement

# PS3.10 7.1: the Type 1 elements of the File Meta Information.
REQUIRED_META = (
    "FileMetaInformationGroupLength",
    "FileMetaInformationVersion",
    "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID",
    "TransferSyntaxUID",
    "ImplementationClassUID",
)
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
IMAGE_PIXEL_ELEMENTS = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "PhotometricInterpretation")
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float Pixel Data
# VRs whose values pydicom's validators check (text and numbers; bulk binary is not "checkable").
_CHECKED_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "SV", "TM", "UI", "UL", "UR", "US", "UV"})
_VM_SPEC = re.compile(r"^(\d+)(?:-(\d*)(n?))?$")


@dataclass
class Report:
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def error(self, check: str, message: str, tag: str | None = None) -> None:
        self.errors.append({"check": check, "tag": tag, "message": message})

    def warn(self, check: str, message: str, tag: str | None = None) -> None:
        self.warnings.append({"check": check, "tag": tag, "message": message})


def validate(job: Job) -> Outcome:
    report = Report()
    _check_preamble(job.input, report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's reading warnings become findings below, with their tags
        ds = read_dataset(job.input)
    meta = getattr(ds, "file_meta", None)
    _check_file_meta(ds, meta, report)
    _check_uids(ds, report)
    _check_pixel_data(ds, meta, report)
    if meta is not None:
        _check_values(meta, report)
    _check_values(ds, report)
    strict = bool(job.option("strict"))
    valid = not report.errors and not (strict and report.warnings)
    return Outcome(metadata={"valid": valid, "errors": report.errors, "warnings": report.warnings})


def _tag(elem_or_tag: Any) -> str:
    tag = getattr(elem_or_tag, "tag", elem_or_tag)
    return f"({tag.group:04X},{tag.element:04X})"


def _check_preamble(path: Path, report: Report) -> None:
    with path.open("rb") as fh:
        head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        report.error("preamble", "no 128-byte preamble followed by 'DICM': not a DICOM Part 10 file (PS3.10 7.1)")


def _check_file_meta(ds: Dataset, meta: Dataset | None, report: Report) -> None:
    from pydicom.uid import UID

    if meta is None or not len(meta):
        report.error("file_meta", "no File Meta Information (group 0002)")
        return
    for keyword in REQUIRED_META:
        if not meta.get(keyword):
            report.error("file_meta", f"required file meta element {keyword} is missing or empty", _tag(_keyword_tag(keyword)))
    ts = meta.get("TransferSyntaxUID")
    if ts and not UID(str(ts)).is_transfer_syntax:
        report.error("transfer_syntax", f"unknown transfer syntax {ts}", "(0002,0010)")
    for meta_kw, kw in (("MediaStorageSOPClassUID", "SOPClassUID"), ("MediaStorageSOPInstanceUID", "SOPInstanceUID")):
        if meta.get(meta_kw) and ds.get(kw) and str(meta[meta_kw].value) != str(ds[kw].value):
            report.error("file_meta", f"{meta_kw} {meta[meta_kw].value} differs from {kw} {ds[kw].value}", _tag(meta[meta_kw]))


def _keyword_tag(keyword: str) -> Any:
    from pydicom.tag import Tag

    return Tag(keyword)


def _check_uids(ds: Dataset, report: Report) -> None:
    from pydicom.uid import UID

    for keyword in REQUIRED_UIDS:
        if not ds.get(keyword):
            report.error("required_uid", f"{keyword} is missing or empty", _tag(_keyword_tag(keyword)))
    sop_class = ds.get("SOPClassUID")
    if sop_class and UID(str(sop_class)).is_valid and UID(str(sop_class)).name == str(sop_class):
        report.warn("sop_class", f"SOP Class UID {sop_class} is not a standard SOP class (private or retired?)", "(0008,0016)")


def _check_pixel_data(ds: Dataset, meta: Dataset | None, report: Report) -> None:
    """The stored length must match what the image pixel elements describe (native syntaxes)."""
    from pydicom.uid import UID

    elem = next((ds[t] for t in _PIXEL_TAGS if t in ds), None)
    if elem is None or elem.value is None:
        return
    missing = [kw for kw in IMAGE_PIXEL_ELEMENTS if ds.get(kw) in (None, "")]
    if missing:
        report.error("pixel_data", f"pixel data present but {', '.join(missing)} missing", _tag(elem))
        return
    ts = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    data = elem.value
    if ts.is_transfer_syntax and ts.is_encapsulated:
        if elem.tag == 0x7FE00010 and bytes(data[:4]) != b"\xfe\xff\x00\xe0":
            report.error("pixel_data", f"transfer syntax {ts.name} needs encapsulated pixel data, found native bytes", _tag(elem))
        return
    from pydicom.pixels.utils import get_expected_length

    try:
        expected = get_expected_length(ds, unit="bytes")
        frames = int(ds.get("NumberOfFrames") or 1)
    except Exception as err:
        report.error("pixel_data", f"cannot compute the expected pixel data length: {type(err).__name__}: {err}", _tag(elem))
        return
    described = f"Rows {ds.Rows} x Columns {ds.Columns} x Samples {ds.SamplesPerPixel} x {ds.BitsAllocated} bits x {frames} frame(s)"
    actual = len(data)
    if actual < expected:
        report.error("pixel_data", f"pixel data holds {actual} bytes, {described} needs {expected}", _tag(elem))
    elif actual > expected + expected % 2:
        report.warn("pixel_data", f"pixel data holds {actual} bytes, {described} needs {expected}: {actual - expected} excess bytes", _tag(elem))


def _check_values(ds: Dataset, report: Report, where: str = "") -> None:
    """Every element, nested items included: value vs VR (pydicom's validators) and VM vs dictionary."""
    for key in ds.keys():  # noqa: SIM118 - tags only; iterating the data set would convert every value first
        tag = where + _tag(key)
        try:
            elem = ds[key]
        except Exception as err:  # pydicom converts on access: a value its VR cannot hold fails here
            report.error("value", f"the value cannot be decoded: {type(err).__name__}: {err}", tag)
            continue
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or []):
                _check_values(item, report, f"{tag}[{index}].")
            continue
        if elem.is_empty:
            continue
        _check_vr(elem, tag, report)
        _check_vm(elem, tag, report)


def _check_vr(elem: DataElement, tag: str, report: Report) -> None:
    from pydicom import config
    from pydicom.datadict import dictionary_VR
    from pydicom.valuerep import validate_value

    if not elem.tag.is_private and elem.tag.element != 0:
        try:
            expected = dictionary_VR(elem.tag)
        except KeyError:
            expected = None
        if expected and elem.VR not in expected.split(" or ") and elem.VR != "UN":
            report.warn("vr", f"{elem.keyword} has VR {elem.VR}, the dictionary says {expected}", tag)
    if elem.VR not in _CHECKED_VRS:
        return
    values = elem.value if elem.VM > 1 else [elem.value]
    for value in values:
        raw = getattr(value, "original_string", None) or (str(value) if elem.VR in ("DS", "IS", "PN") else value)
        try:
            validate_value(elem.VR, raw, config.RAISE)
        except ValueError as err:
            name = elem.keyword or "private element"
            report.error("value", f"{name} ({elem.VR}): {err}", tag)
            return


def _check_vm(elem: DataElement, tag: str, report: Report) -> None:
    from pydicom.datadict import dictionary_VM

    if elem.tag.is_private or elem.tag.element == 0:
        return
    try:
        spec = dictionary_VM(elem.tag)
    except KeyError:
        return
    if not _vm_allows(spec, elem.VM):
        report.error("vm", f"{elem.keyword} has {elem.VM} value(s), the dictionary's VM is {spec}", tag)


def _vm_allows(spec: str, vm: int) -> bool:
    """'1', '2', '1-3', '1-n', '2-2n' (a multiple of 2), as PS3.6 writes them."""
    match = _VM_SPEC.match(spec.strip())
    if match is None:
        return True  # a spec we do not understand is not held against the file
    low, high, open_end = int(match[1]), match[2], match[3]
    if high is None:
        return vm == low
    if open_end:
        step = int(high) if high else 1
        return vm >= low and vm % step == 0
    return low <= vm <= int(high)
