"""`modify_tags` options checked and normalised once for the command-line editors
(dcmodify, gdcmanon --dumb): each tag resolved in the DICOM dictionary, each value checked
against its VR with pydicom's validators, before anything reaches a command line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError

_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)?$")
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})


@dataclass(frozen=True)
class TagEdit:
    action: str  # "set" or "delete"
    key: str  # as the user wrote it
    tag: int
    vr: str
    value: str = ""  # backslash-joined values, as DICOM text

    @property
    def paren(self) -> str:
        """(gggg,eeee), the form dcmodify reads."""
        return f"({self.tag >> 16:04x},{self.tag & 0xFFFF:04x})"

    @property
    def short_hex(self) -> str:
        """gggg,eeee without zero padding, the form gdcmanon --dumb reads (e.g. 10,10)."""
        return f"{self.tag >> 16:x},{self.tag & 0xFFFF:x}"


def plan_edits(set_values: dict[str, Any], delete: list[str]) -> list[TagEdit]:
    """Validated edits: sets first (in the order given), then deletions."""
    edits = [_set_edit(key, value) for key, value in set_values.items()]
    edits += [TagEdit("delete", key, tag, vr) for key in delete for tag, vr in [_resolve(key, creating=False)]]
    return edits


def _resolve(key: str, *, creating: bool) -> tuple[int, str]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    match = _TAG.match(key.strip())
    tag = int(match[1] + match[2], 16) if match else tag_for_keyword(key.strip())
    if tag is None:
        raise HubError(ErrorCode.INVALID_REQUEST, f"unknown tag {key!r}", "use a DICOM keyword (PatientName) or (gggg,eeee)")
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        if creating:
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                f"{key} is not in the DICOM dictionary and this toolkit's editor cannot be told its VR",
                "use backend python with options.vr",
            ) from None
        vr = "UN"
    return tag, vr


def _set_edit(key: str, value: Any) -> TagEdit:
    tag, vr = _resolve(key, creating=True)
    if vr == "SQ" or " or " in vr:
        raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"{key} has VR {vr}; only single-VR, non-sequence elements can be set here", "use backend python")
    items = [] if value is None else value if isinstance(value, list) else [value]
    texts = [_checked(key, vr, item) for item in items]
    return TagEdit("set", key, tag, vr, "\\".join(texts))


def _checked(key: str, vr: str, item: Any) -> str:
    from pydicom import config
    from pydicom.valuerep import validate_value

    if isinstance(item, (bool, dict, list)):
        raise HubError(ErrorCode.INVALID_REQUEST, f"{key}: {item!r} is not a valid {vr} value", "give strings or numbers")
    if vr in _NUMBER_VRS:
        try:
            number = float(item) if vr in ("FL", "FD") else int(str(item))
        except ValueError:
            raise HubError(ErrorCode.INVALID_REQUEST, f"{key}: {item!r} is not a number ({vr})", "give a number") from None
        return repr(number) if isinstance(number, float) else str(number)
    text = _text(item)
    try:
        validate_value(vr, text, config.RAISE)
    except (ValueError, TypeError) as err:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{key}: {err}", f"give a valid {vr} value") from None
    return text


def _text(item: Any) -> str:
    if isinstance(item, float) and item.is_integer():
        return str(int(item))
    return str(item)
