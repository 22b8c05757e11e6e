"""DICOM JSON Model documents printed by external toolkits, turned into contract answers.

dicom-rs (`dicom-dump --format json`) and PixelMed (`JSONRepresentationOfDicomObjectFactory`) both
print PS3.18 JSON, with group 0002 included; PixelMed wraps the object in an array and writes
lowercase tags. This module brings either into the shape the Python backend returns, so `to_json`
and `info` agree across backends: uppercase tags, group 0002 only on request, bulk data left out on
request (same 1 KiB threshold as the Python backend), and the `info` summary keys.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter
from dicom_hub.adapters.toolkit.syntaxes import uid_name
from dicom_hub.contract.dicom.json_model import BULK_THRESHOLD, drop_elements, special_numbers_as_strings
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.info import arrange_info, info_fields
from dicom_hub.contract.job import Job, Outcome

_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}


def load_document(text: str, source: str) -> dict[str, Any]:
    """One data set from a tool's JSON text (an object, or an array holding one object)."""
    data = SubprocessAdapter.parse_json_maybe(text)
    if data is None:
        raise HubError(ErrorCode.BACKEND_ERROR, f"{source} did not print JSON (got {text.strip()[:40]!r})", "see stderr")
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict) or not data:
        raise HubError(ErrorCode.BACKEND_ERROR, f"{source} printed no data set (got {str(data)[:40]!r})", "see stderr")
    return normalize(data)


def normalize(document: dict[str, Any]) -> dict[str, Any]:
    """Uppercase tag keys, nested items included (PS3.18 F.2.1.1 spells them in uppercase hex)."""
    out: dict[str, Any] = {}
    for tag, entry in document.items():
        if isinstance(entry, dict) and entry.get("vr") == "SQ" and isinstance(entry.get("Value"), list):
            entry = {**entry, "Value": [normalize(item) if isinstance(item, dict) else item for item in entry["Value"]]}
        out[tag.upper()] = entry
    return out


def shape(document: dict[str, Any], *, include_file_meta: bool, omit_bulk: bool) -> tuple[dict[str, Any], list[str]]:
    """The document as `to_json` returns it, and the tag paths of the bulk values left out."""
    shaped = {tag: entry for tag, entry in document.items() if include_file_meta or not tag.startswith("0002")}
    omitted = drop_elements(shaped, _is_bulk) if omit_bulk else []
    return shaped, omitted


def _is_bulk(entry: dict[str, Any]) -> bool:
    return _binary_length(entry) >= BULK_THRESHOLD or "BulkDataURI" in entry


def _binary_length(entry: dict[str, Any]) -> int:
    inline = entry.get("InlineBinary")
    if not isinstance(inline, str):
        return 0
    return len(base64.b64decode(inline))


def json_outcome(job: Job, document: dict[str, Any], *, stderr: str = "") -> Outcome:
    """Answer `to_json` from a normalized document: in metadata.dataset, or written to the output."""
    shaped, omitted = shape(
        document,
        include_file_meta=bool(job.option("include_file_meta", False)),
        omit_bulk=job.option("bulk_data") == "omit",
    )
    special_numbers_as_strings(shaped)  # a tool's NaN/Infinity tokens: standard JSON only
    metadata: dict[str, Any] = {"element_count": len(shaped), "omitted": omitted}
    if job.output is None:
        metadata["dataset"] = shaped
        return Outcome(metadata=metadata, stderr=stderr)
    with atomic_output(job.output, job.overwrite) as tmp:
        tmp.write_text(json.dumps(shaped, indent=job.option("indent"), allow_nan=False), encoding="utf-8")
    return Outcome(metadata=metadata, output_files=[str(job.output)], stderr=stderr)


def element_value(entry: dict[str, Any]) -> Any:
    """A JSON Model element as the Python backend's `element_value` renders it.

    Text without padding, binary numbers as numbers, person names as their PS3.5 string form,
    several values as a list; empty elements are None.
    """
    values = entry.get("Value")
    if not values:
        return None
    vr = entry.get("vr")
    if vr == "SQ":
        return None
    rendered = [_one_value(vr, v) for v in values]
    return rendered if len(rendered) > 1 else rendered[0]


def _one_value(vr: str | None, value: Any) -> Any:
    if vr == "PN" and isinstance(value, dict):
        groups = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
        while groups and not groups[-1]:
            groups.pop()
        return "=".join(groups)
    if vr in _BINARY_NUMBER_VRS:
        return value
    return str(value).strip() if value is not None else ""


def info_outcome(path: Path, document: dict[str, Any], *, stderr: str = "") -> Outcome:
    """The contract's `info` summary from a normalized document (group 0002 included)."""
    from pydicom.datadict import tag_for_keyword

    values: dict[str, Any] = {}
    for keywords in info_fields().values():
        for keyword in keywords:
            tag = tag_for_keyword(keyword)
            entry = document.get(f"{tag:08X}") if tag is not None else None
            if entry is not None:
                values[keyword] = element_value(entry)
    ts = element_value(document.get("00020010", {}))
    sop_class = values.get("SOPClassUID")
    file = {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "transfer_syntax": ts,
        "transfer_syntax_name": uid_name(ts),
        "sop_class_name": uid_name(sop_class) if isinstance(sop_class, str) else None,
    }
    return Outcome(metadata=arrange_info(values, file), stderr=stderr)


def resolve_un(document: dict[str, Any], *, little_endian: bool = True) -> dict[str, Any]:
    """Top-level public elements stored as UN, re-read with their dictionary VR (as pydicom does
    when it reads the file), so the `info` summary sees their values. Others are kept as they are."""
    import base64

    from pydicom.datadict import dictionary_VR
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.tag import BaseTag
    from pydicom.values import convert_value

    resolved = {}
    for tag, entry in document.items():
        if isinstance(entry, dict) and entry.get("vr") == "UN" and isinstance(entry.get("InlineBinary"), str):
            try:
                vr = dictionary_VR(int(tag, 16))
            except KeyError:
                vr = None
            if vr and vr not in ("SQ", "UN", "OB", "OW", "OB or OW", "US or SS", "US or OW", "US or SS or OW"):
                raw = base64.b64decode(entry["InlineBinary"])
                element = RawDataElement(BaseTag(int(tag, 16)), vr, len(raw), raw, 0, False, little_endian)
                value = convert_value(vr, element)
                entry = DataElement(int(tag, 16), vr, value).to_json_dict(None, 1 << 20)
        resolved[tag] = entry
    return resolved
