"""Rules of the DICOM JSON Model (PS3.18 Annex F) that every backend's JSON follows: which values
count as bulk data, how NaN and infinities are written, and removing elements at every depth.
The Python backend encodes with pydicom; the toolkit adapters reshape a tool's JSON
(`adapters/toolkit/dicom_json.py`); both apply these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Binary values at least this long (bytes) count as bulk data for `bulk_data: omit`.
BULK_THRESHOLD = 1024

# PS3.18 F.2.3.1: JSON numbers have no NaN or infinities; FL/FD (and DS, whose JSON form may be a
# string) carry them as these strings, which readers (pydicom, dicom-rs) turn back into floats.
SPECIAL_NUMBER_STRINGS = {"nan": "NaN", "inf": "inf", "-inf": "-inf"}


def special_numbers_as_strings(document: dict[str, Any]) -> None:
    """Replace, in place and at every depth, NaN and infinite DS/FL/FD values by their strings,
    so the document is standard JSON (`json.dumps(..., allow_nan=False)` accepts it)."""
    import math

    for entry in document.values():
        if not isinstance(entry, dict):
            continue
        values = entry.get("Value")
        if not isinstance(values, list):
            continue
        if entry.get("vr") == "SQ":
            for item in values:
                if isinstance(item, dict):
                    special_numbers_as_strings(item)
        elif entry.get("vr") in ("DS", "FL", "FD"):
            entry["Value"] = [SPECIAL_NUMBER_STRINGS[str(v).lower()] if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def drop_elements(document: dict[str, Any], drop: Callable[[dict[str, Any]], bool], prefix: str = "") -> list[str]:
    """Remove, in place and at every depth, the elements of a DICOM JSON document that `drop`
    picks; return their tag paths (`00540016[0].00181072`). Shared with the toolkit adapters."""
    dropped = []
    for tag in list(document):
        entry = document[tag]
        if drop(entry):
            del document[tag]
            dropped.append(prefix + tag)
        elif entry.get("vr") == "SQ":
            for index, item in enumerate(entry.get("Value", [])):
                dropped += drop_elements(item, drop, f"{prefix}{tag}[{index}].")
    return dropped
