"""Element values as plain JSON values, the same way for every op that reports them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement

_BINARY_NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}


def element_value(elem: DataElement) -> Any:
    """Stored strings without padding; binary numbers as numbers; multiple values as a list."""
    value = elem.value
    if elem.is_empty:
        return None
    if elem.VR in _BINARY_NUMBER_VRS:
        return list(value) if elem.VM > 1 else value
    if elem.VR in ("DS", "IS"):
        # The stored string is the truth (a DS "0.500" is not the float 0.5 in every toolkit).
        raw = elem.value
        items = list(raw) if elem.VM > 1 else [raw]
        texts = [getattr(v, "original_string", None) or str(v) for v in items]
        texts = [t.strip() for t in texts]
        return texts if elem.VM > 1 else texts[0]
    if elem.VM > 1:
        return [str(v).strip() for v in value]
    return str(value).strip()
