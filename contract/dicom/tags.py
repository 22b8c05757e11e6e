"""Naming a tag in a request: `PatientName`, `(0010,0010)`, `0010,0010` or `00100010`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom.tag import BaseTag

TAG_TEXT = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")


def parse_tag(name: str) -> BaseTag:
    """`PatientName`, `(0010,0010)`, `0010,0010` or `00100010` -> a tag; else `invalid_request`."""
    from pydicom.datadict import tag_for_keyword
    from pydicom.tag import Tag

    match = TAG_TEXT.match(name.strip())
    if match:
        return Tag(int(match[1], 16), int(match[2], 16))
    tag = tag_for_keyword(name.strip())
    if tag is None:
        raise HubError(ErrorCode.INVALID_REQUEST, f"unknown tag {name!r}", "use a DICOM keyword such as PatientName or a tag as (gggg,eeee)")
    return Tag(tag)
