"""`info` and `dump`: read a file's elements and describe them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.info import arrange_info, info_fields
from dicom_hub.contract.job import Job, Outcome

from ._values import element_value

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.dataelem import DataElement



def info(job: Job) -> Outcome:
    from .fast_info import fast_info

    path = job.input
    summary = fast_info(path)  # None unless the file is a plain case it reads exactly like pydicom
    if summary is not None:
        return Outcome(metadata=summary)
    ds = read_dataset(path, defer_size=4096, parse_all=False)
    try:
        with _values_unchecked():
            values = _summary_values(ds)
    except Exception as err:  # a malformed value of one of the summary elements
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt") from None
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    file = {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "transfer_syntax": str(ts) if ts else None,
        "transfer_syntax_name": _uid_name(ts) if ts else None,
        "sop_class_name": _uid_name(ds.SOPClassUID) if "SOPClassUID" in ds else None,
    }
    return Outcome(metadata=arrange_info(values, file))


def _uid_name(value: Any) -> str:
    """A UID's name; a corrupt element (another VR, several values) holds a plain string or a list."""
    from pydicom.uid import UID

    return UID(value if isinstance(value, str) else str(value)).name


def _summary_values(ds: Dataset) -> dict[str, Any]:
    """keyword -> value of each info field present. Each raw element goes through pydicom's own
    converter directly: `Dataset.__getitem__` adds bookkeeping (caching the converted element,
    private-creator lookups) that costs a quarter of an `info` request and is of no use here."""
    from pydicom.dataelem import RawDataElement, convert_raw_data_element

    values = {}
    for keyword, tag in _info_tags().items():
        elem = ds.get_item(tag, keep_deferred=True)
        if elem is None:
            continue
        if isinstance(elem, RawDataElement):
            deferred = elem.value is None and elem.length
            elem = ds[tag] if deferred else convert_raw_data_element(elem, encoding=ds.original_character_set, ds=ds)
        values[keyword] = element_value(elem)
    return values


@contextmanager
def _values_unchecked() -> Iterator[None]:
    """Convert values without pydicom's per-value VR checks (a sixth of an `info` request):
    `info` reports what is stored; judging it is the `validate` op's job."""
    from pydicom import config

    previous = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.reading_validation_mode = previous


@cache
def _info_tags() -> dict[str, int]:
    """keyword -> tag of every info field, looked up once per process (the stream hot path)."""
    from pydicom.tag import Tag

    return {kw: int(Tag(kw)) for keywords in info_fields().values() for kw in keywords}  # Tag raises on an unknown keyword


def dump(job: Job) -> Outcome:
    ds = read_dataset(job.input)
    max_depth = job.option("max_depth")
    max_len = int(job.option("max_value_length"))
    with_pixels = bool(job.option("include_pixel_data"))
    lines: list[str] = []
    elements: list[dict[str, Any]] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None and len(meta):
        _walk(meta, 0, max_depth, max_len, with_pixels, lines, elements)
    _walk(ds, 0, max_depth, max_len, with_pixels, lines, elements)
    text = "\n".join(lines) + "\n"
    metadata = {"elements": elements, "element_count": len(elements)}
    if job.output is None:
        return Outcome(metadata=metadata, stdout=text)
    with atomic_output(job.output, job.overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Outcome(metadata=metadata, output_files=[str(job.output)])


def _walk(
    ds: Dataset,
    depth: int,
    max_depth: int | None,
    max_len: int,
    with_pixels: bool,
    lines: list[str],
    elements: list[dict[str, Any]],
) -> None:
    indent = "  " * depth
    for elem in ds:
        if elem.tag == 0x7FE00010 and not with_pixels:
            continue
        shown = _shown_value(elem, max_len)
        name = elem.keyword or elem.name
        lines.append(f"{indent}({elem.tag.group:04X},{elem.tag.element:04X}) {elem.VR} {name}: {shown}")
        elements.append({"tag": f"{elem.tag.group:04X}{elem.tag.element:04X}", "vr": elem.VR, "keyword": elem.keyword, "depth": depth, "value": shown})
        if elem.VR == "SQ" and (max_depth is None or depth < max_depth):
            for index, item in enumerate(elem.value):
                lines.append(f"{indent}  > item {index}")
                _walk(item, depth + 1, max_depth, max_len, with_pixels, lines, elements)


def _shown_value(elem: DataElement, max_len: int) -> str:
    if elem.VR == "SQ":
        return f"<sequence of {len(elem.value)} item(s)>"
    if elem.tag == 0x7FE00010 or elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        length = len(elem.value) if elem.value is not None else 0
        return f"<{elem.VR} binary, {length} bytes>"
    text = str(elem.value) if not elem.is_empty else ""
    return text if len(text) <= max_len else text[: max_len - 3] + "..."
