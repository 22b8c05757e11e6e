"""Rescale Slope and Intercept (0028,1053/1052) that no backend can apply: NaN, infinite, or so
large that the Modality LUT leaves the range of numbers. The Python backend checks before it
rescales, toolkit adapters before a tool that would answer wrongly (dcmj2pnm reports min 0, max 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset


def check_rescale(ds: Dataset) -> None:
    """`decode_error` when Rescale Slope/Intercept are NaN or infinite, or take the largest stored
    value Bits Stored allows beyond the float range (shared with adapters that rescale in a tool)."""
    import math

    if "ModalityLUTSequence" in ds:
        return
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        _check_finite(ds, keyword)
    try:
        slope, intercept = first_number(ds.get("RescaleSlope")), first_number(ds.get("RescaleIntercept"))
    except (TypeError, ValueError):
        return
    largest = abs(slope or 1.0) * 2.0 ** int(ds.get("BitsStored") or 16) + abs(intercept or 0.0)
    if not math.isfinite(largest):
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"Rescale Slope {ds.get('RescaleSlope')} and Intercept {ds.get('RescaleIntercept')} take the stored values beyond the range of numbers",
            "the file's (0028,1053) Rescale Slope is not a usable value; set modality: false to use stored values",
        )


def _check_finite(ds: Dataset, keyword: str) -> None:
    import math

    value = ds.get(keyword)
    try:
        number = first_number(value)
    except (TypeError, ValueError):
        return  # pydicom reports values that are not numbers at all
    if number is not None and not math.isfinite(number):
        elem = ds.data_element(keyword)
        assert elem is not None  # its value was just read
        tag = elem.tag
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"({tag.group:04X},{tag.element:04X}) {keyword} is {value!s}, not a finite number",
            "fix the attribute (modify_tags), or set modality: false to use stored values",
        )


def first_number(value: Any) -> float | None:
    """The first value of a possibly multi-valued DS element."""
    from pydicom.multival import MultiValue

    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    return None if value is None or value == "" else float(value)
