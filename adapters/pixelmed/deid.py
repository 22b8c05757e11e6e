"""The leak check behind PixelMed's `anonymize`: what DeidentifyAndRedact left that Annex E removes.

DeidentifyAndRedact keeps dates, institution, descriptors and private tags by default (gotcha 16),
so its output is compared with the input through PS3.15 Table E.1-1 (the same table the Python
backend applies) and refused when an identifying value survives unchanged.
"""

from __future__ import annotations

from pathlib import Path


def check_deidentified(original: Path, written: Path) -> list[str]:
    """Keywords (or private tags) whose original non-empty value is still in `written`.

    Table attributes with any action but K count, top level only; every surviving private
    element counts (the basic profile removes private tags).
    """
    from dicom_hub.python_backend.deid.profile import load_table
    from pydicom import dcmread

    before = dcmread(original, stop_before_pixels=True)
    after = dcmread(written, stop_before_pixels=True)
    kept = []
    for tag, row in load_table().items():
        if row.basic == "K" or tag not in before or tag not in after:
            continue
        old, new = before[tag], after[tag]
        if not old.is_empty and old.VR != "SQ" and new.value == old.value:
            kept.append(row.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
    for elem in after:
        if elem.tag.is_private and not elem.is_empty and elem.tag in before and before[elem.tag].value == elem.value:
            kept.append(f"private ({elem.tag.group:04X},{elem.tag.element:04X})")
    return kept
