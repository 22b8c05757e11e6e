"""What a DIMSE status code means: its category and the standard's text, per service.

The table (`contract/data/dimse-status-pynetdicom-*.tsv`) is pynetdicom's transcription of PS3.7
Annex C and the PS3.4 service classes, written by `scripts/gen_status_table.py`; reading it costs
nothing like importing pynetdicom, so toolkit adapters that parse a tool's status dump describe it
exactly as the Python backend describes the status pynetdicom received.
"""

from __future__ import annotations

import csv
from functools import cache
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.deid.profile import _data_lines, data_dir

if TYPE_CHECKING:
    from pydicom import Dataset

TABLE_NAME = "dimse-status-pynetdicom-3.0.4.tsv"
GENERAL = "general"
NO_RESPONSE = {"status": None, "status_hex": None, "category": "No response", "text": "no response (timeout or aborted association)"}
# Failure codes outside the A000-AFFF and C000-CFFF ranges (PS3.7 C.4), as pynetdicom lists them.
_FAILURE_CODES = frozenset({0x0105, 0x0106, 0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0117, 0x0118, 0x0119,
                            0x0120, 0x0121, 0x0122, 0x0123, 0x0124, 0x0210, 0x0211, 0x0212, 0x0213})


@cache
def _ranges() -> dict[str, tuple[tuple[int, int, str, str], ...]]:
    """service -> (first, last, category, text) rows."""
    found: dict[str, list[tuple[int, int, str, str]]] = {}
    for record in csv.DictReader(_data_lines(data_dir() / TABLE_NAME), delimiter="\t"):
        row = (int(record["first"], 16), int(record["last"], 16), record["category"], record["text"] or "")
        found.setdefault(record["service"], []).append(row)
    return {service: tuple(rows) for service, rows in found.items()}


def meaning(code: int, service: str = "") -> tuple[str, str]:
    """(category, text) of `code` for `service` ('C-STORE', 'C-FIND', 'C-MOVE', 'C-GET', 'worklist
    C-FIND'; any other name: the general table only). A code no table lists gets the category of
    its range (PS3.7 C.1) and no text."""
    tables = _ranges()
    for table in (tables.get(service, ()), tables[GENERAL]):
        for first, last, category, text in table:
            if first <= code <= last:
                return category, text
    return category_of(code), ""


def category_of(code: int) -> str:
    """The category a status code's value alone tells (PS3.7 Annex C), 'Unknown' when it tells none."""
    if code == 0x0000:
        return "Success"
    if code in (0xFF00, 0xFF01):
        return "Pending"
    if code == 0xFE00:
        return "Cancel"
    if code in _FAILURE_CODES or 0xA000 <= code <= 0xAFFF or 0xC000 <= code <= 0xCFFF:
        return "Failure"
    if code in (0x0001, 0x0107, 0x0116) or 0xB000 <= code <= 0xBFFF:
        return "Warning"
    return "Unknown"


def status_info(status: Dataset | None, service: str = "") -> dict[str, Any]:
    """A DIMSE status as data: code, hex, category (Success/Warning/Failure/Cancel/Pending) and the
    standard's text for it, plus the peer's ErrorComment."""
    if status is None or "Status" not in status:
        return dict(NO_RESPONSE)
    code = int(status.Status)
    category, text = meaning(code, service)
    comment = status.get("ErrorComment")
    return {"status": code, "status_hex": f"0x{code:04X}", "category": category, "text": f"{text} ({comment})" if comment else text}
