"""Element values as plain JSON values, the same way for every op that reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement

_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}


def element_value(elem: DataElement) -> Any:
    """Stored strings without padding; binary numbers as numbers; multiple values as a list.

    `VM` is computed once: pydicom derives it from the value on every access, and this runs for
    every element an `info` request reports.
    """
    vm = elem.VM
    if vm == 0:
        return None
    value = elem.value
    items = list(value) if vm > 1 else [value]
    if elem.VR in _BINARY_NUMBER_VRS:
        return items if vm > 1 else value
    if elem.VR in ("DS", "IS"):
        # The stored string is the truth (a DS "0.500" is not the float 0.5 in every toolkit).
        texts = [(getattr(v, "original_string", None) or str(v)).strip() for v in items]
    else:
        texts = [str(v).strip() for v in items]
    return texts if vm > 1 else texts[0]
