"""Attribute matching of C-FIND (PS3.4 C.2.2.2), one key against one stored value.

- universal matching: an empty key value matches everything (and asks for the value back);
- single value matching: equal values; for PN case-insensitive (as Orthanc and DCMTK do by
  default), for text VRs leading/trailing spaces are not significant;
- list of UID matching: a key `1.2\\1.3` matches either UID;
- wild card matching: `*` (any run) and `?` (one character), in every VR but DA, TM, DT, UI,
  SQ and the binary ones; a key of `*` alone is universal;
- range matching: `A-B`, `-B`, `A-` for DA, TM and DT (inclusive; a partial time such as `10`
  covers 10:00:00 to 10:59:59.999999). Date and time keys are matched independently (the
  combined datetime matching of C.2.2.2.5 needs extended negotiation, which we do not accept);
- sequence matching: a one-item sequence key matches when one item of the stored sequence matches
  every non-empty key of the item (an item with no keys is universal);
- a multi-valued stored attribute matches when one of its values matches.
A non-universal key never matches an absent or empty stored value.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.dataelem import DataElement

NO_WILDCARD_VRS = frozenset({"DA", "TM", "DT", "UI", "SQ", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT",
                             "OB", "OD", "OF", "OL", "OV", "OW", "UN"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "IS", "DS"})


def values_of(element: DataElement | None) -> list[Any]:
    """The element's values as a list (empty when absent or empty)."""
    if element is None or element.value is None or element.value == "":
        return []
    value = element.value
    if element.VR == "SQ":
        return list(value)
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [v for v in value if v not in (None, "")]
    return [value]


def is_universal(key: DataElement) -> bool:
    if key.VR == "SQ":
        return not key.value or all(is_universal(sub) for item in key.value for sub in item)
    values = values_of(key)
    return not values or (key.VR not in NO_WILDCARD_VRS and all(str(v) == "*" for v in values))


def element_matches(key: DataElement, stored: DataElement | None) -> bool:
    """Does the stored element match the key element (same tag)?"""
    if is_universal(key):
        return True
    if key.VR == "SQ":
        return sequence_matches(key, stored)
    stored_values = values_of(stored)
    return any(value_matches(key.VR, str(k), s) for k in values_of(key) for s in stored_values)


def sequence_matches(key: DataElement, stored: DataElement | None) -> bool:
    if stored is None or stored.VR != "SQ":
        return False
    wanted = key.value[0]
    return any(dataset_matches(wanted, item) for item in stored.value)


def dataset_matches(query: Dataset, candidate: Dataset, skip: frozenset[int] = frozenset()) -> bool:
    """Every key of `query` (but the `skip` tags) matches `candidate`."""
    return all(element_matches(key, candidate.get(key.tag)) for key in query if key.tag not in skip)


def value_matches(vr: str, key: str, stored: Any) -> bool:
    """One key value against one stored value."""
    key = key.strip()
    if vr in RANGE_VRS and "-" in key:
        return in_range(vr, key, str(stored).strip())
    if vr in NUMBER_VRS:
        try:
            return float(key) == float(stored)
        except (TypeError, ValueError):
            return False
    text = str(stored).strip()
    if vr == "PN":
        key, text = key.upper(), text.upper()
    if vr not in NO_WILDCARD_VRS and ("*" in key or "?" in key):
        return wildcard(key).fullmatch(text) is not None
    return text == key


@lru_cache(maxsize=256)
def wildcard(key: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in key), re.DOTALL)


def in_range(vr: str, key: str, stored: str) -> bool:
    """Inclusive range matching of DA/TM/DT; `-B` and `A-` are open ranges. For DT the key is
    split at the hyphen that joins two values (a DT value may itself carry no hyphen but an offset)."""
    low, _, high = key.partition("-")
    if vr == "DT" and "-" in high:  # "2020-2021-0500": keep it simple, offsets are ignored
        high = high.split("-")[0]
    value = normalized(vr, stored, upper=False)
    if not value:
        return False
    if low and value < normalized(vr, low, upper=False):
        return False
    return not (high and value > normalized(vr, high, upper=True))


def normalized(vr: str, value: str, upper: bool) -> str:
    """A comparable form: DA as YYYYMMDD, TM as HHMMSS.ffffff, DT as YYYYMMDDHHMMSS.ffffff (offset
    ignored). A partial value is padded to the first (lower bound) or last (upper bound) instant it covers."""
    value = value.strip().replace(":", "")
    if vr == "DA":
        return value.replace(".", "")[:8]
    if vr == "DT":
        value = re.split(r"[+-]", value)[0]
    whole, _, fraction = value.partition(".")
    template = _UPPER[vr] if upper else _LOWER[vr]
    whole = whole + template[len(whole):]
    fraction = fraction.ljust(6, "9" if upper else "0")[:6]
    return f"{whole}.{fraction}"


_LOWER = {"TM": "000000", "DT": "00000101000000"}
_UPPER = {"TM": "235959", "DT": "99991231235959"}
