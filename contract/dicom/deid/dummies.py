"""Action D: dummy values by VR, and for a sequence one dummy item in place of its items.

PS3.15 E.1.1 gives D to sequences such as Content Sequence, Person Identification Code Sequence and
Graphic Annotation Sequence: "a non-zero length value that may be a dummy value". Cleaning the
original items would keep every attribute the table does not list (the SR text, code values, text
objects), so the items go and one item valid for the IOD, holding only fixed values, takes their
place. The items come from `contract/data/deid-dummy-items.tsv`, shared by every backend: the Python
engine builds them (`item_for`), the DCMTK plan inserts them element by element (`elements_for`), and
the C# program embeds the same file (scripts/install/40-csharp.sh).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .profile import _data_lines, _parse_tag, data_dir

if TYPE_CHECKING:
    from pydicom import Dataset

TABLE_NAME = "deid-dummy-items.tsv"

# Free text: inside a sequence the profile cleans (C), these are replaced, never copied.
FREE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UC"})
FREE_TEXT_DUMMY = "ANONYMIZED"

# Dummy values for action D on an element that is not a sequence, by VR (a valid value for each).
DUMMY_BY_VR: dict[str, Any] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "UC": "ANONYMIZED",
    "UT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "UR": "urn:anonymized",
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
    "AT": 0,
}
BINARY_DUMMY = b"\0\0"  # the other VRs (OB, OW, UN, ...)


@dataclass(frozen=True)
class DummyElement:
    """One element of a dummy item: its tags from the item down (item 1 of each sequence on the way)."""

    path: tuple[int, ...]
    vr: str
    value: str


@cache
def load() -> dict[int, tuple[DummyElement, ...]]:
    """Sequence tag -> the elements of its dummy item."""
    import csv  # when a D sequence is met, not on every start (the bytes engine needs only the dummies by VR)

    found: dict[int, list[DummyElement]] = {}
    for record in csv.DictReader(_data_lines(data_dir() / TABLE_NAME), delimiter="\t"):
        path = tuple(_parse_tag(part) for part in record["path"].split(">"))
        element = DummyElement(path, record["vr"].strip(), record["value"].strip())
        found.setdefault(_parse_tag(record["sequence"]), []).append(element)
    return {tag: tuple(elements) for tag, elements in found.items()}


def elements_for(tag: int) -> tuple[DummyElement, ...]:
    """The dummy item of sequence `tag`; `HubError` (invalid_request) when none is defined, so a
    D sequence is never copied for want of a dummy."""
    elements = load().get(tag)
    if elements is None:
        from dicom_hub.contract.errors import ErrorCode, HubError

        raise HubError(
            ErrorCode.INTERNAL_ERROR,
            f"no dummy item is defined for sequence ({tag >> 16:04X},{tag & 0xFFFF:04X}), whose Annex E action is D",
            f"add its item to contract/data/{TABLE_NAME}",
        )
    return elements


def item_for(tag: int) -> Dataset:
    """A fresh pydicom item for sequence `tag` (see `elements_for`)."""
    from pydicom import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    for element in elements_for(tag):
        level = item
        for step in element.path[:-1]:
            if step not in level:
                level.add_new(step, "SQ", Sequence([Dataset()]))
            level = level[step].value[0]
        level.add_new(element.path[-1], element.vr, python_value(element))
    return item


def python_value(element: DummyElement) -> object:
    """The value as pydicom takes it for the element's VR."""
    if element.vr == "SQ":
        return []
    if element.vr in ("OB", "OW", "UN"):
        return bytes.fromhex(element.value)
    if element.vr in ("FL", "FD"):
        values = [float(v) for v in element.value.split("\\")]
        return values if len(values) > 1 else values[0]
    if element.vr in ("US", "SS", "UL", "SL"):
        values = [int(v) for v in element.value.split("\\")]
        return values if len(values) > 1 else values[0]
    return element.value

