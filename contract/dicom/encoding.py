"""How a DICOM file is laid out in bytes (PS3.5 section 7, PS3.10 section 7), for the readers that
walk the bytes themselves instead of asking pydicom.

Why: the `info` fast path, the metadata extraction reader, the byte-level de-identification engine
and the structure check before toolkits run (`python_backend/fast_info.py`,
`python_backend/batch/fastheader.py`, `python_backend/deid/bytes_engine.py`,
`contract/structure.py`) each walk elements their own way (collect a few, collect all, rewrite,
count levels), but the encoding they walk is one: which VRs carry a 4-byte length, the delimiter
tags, the preamble, and the file meta group that says how the rest is encoded. Standard library
and the contract only: the fast paths exist to avoid importing pydicom.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from dicom_hub.contract import transfer_syntaxes

# The encodings the byte readers branch on, by their aliases in the one transfer-syntax table.
IMPLICIT_VR_LE = transfer_syntaxes.uid("implicit")
EXPLICIT_VR_LE = transfer_syntaxes.uid("explicit")
DEFLATED_EXPLICIT_VR_LE = transfer_syntaxes.uid("deflated")
EXPLICIT_VR_BE = transfer_syntaxes.uid("big_endian")

VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split())
# Explicit VRs whose element header has 2 reserved bytes and a 4-byte length (12 bytes, not 8).
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ UC UN UR UT SV UV".split())
UNDEFINED_LENGTH = 0xFFFFFFFF
# Item and delimiter tags: group FFFE, no VR in any encoding, a 4-byte length.
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
TRANSFER_SYNTAX_UID = 0x00020010

PREAMBLE = 128  # bytes before "DICM"
META_START = PREAMBLE + 4  # where the file meta group starts
_SHORTEST = META_START + 12  # "DICM" and at least one element header: shorter is no Part 10 file
_EXPLICIT_HEAD = Struct("<HH2sH")  # group, element, VR, length (of a short VR)
_LONG_LENGTH = Struct("<L")  # after the 2 reserved bytes of a long VR


class NotPart10(ValueError):
    """The bytes do not start with a file meta group this module reads (see `read_file_meta`)."""


class MetaPastData(NotPart10):
    """The file meta group runs past the bytes given: with more of the file it may be read."""


class FileMeta:
    """What the file meta group says (a plain class: a NamedTuple costs the fast paths' start-up)."""

    __slots__ = ("elements", "transfer_syntax", "data_set_start")

    def __init__(self, elements: dict[int, tuple[bytes, bytes]], transfer_syntax: str, data_set_start: int) -> None:
        self.elements = elements  # tag -> (VR, value) of every meta element, in file order (a repeated tag: its last value)
        self.transfer_syntax = transfer_syntax  # the Transfer Syntax UID without its trailing padding
        self.data_set_start = data_set_start  # the offset of the first element after the meta group (the file's size if there is none)


def is_part10(data: bytes | memoryview) -> bool:
    """Whether `data` (a file's first bytes) has the Part 10 preamble and `DICM` marker."""
    return len(data) >= _SHORTEST and data[PREAMBLE:META_START] == b"DICM"


def read_file_meta(data: bytes | memoryview, whole: bool = True) -> FileMeta:
    """The file meta group (group 0002, always Explicit VR Little Endian) at the start of `data`.

    `whole` says `data` is the whole file; otherwise a meta group that reaches the end of `data`
    raises `MetaPastData` (read more and ask again). Refused (`NotPart10`): fewer than 144 bytes or
    no `DICM` after the preamble; a meta element whose VR is not an explicit VR, whose length is
    undefined, or whose value runs past the end; no (or an empty) Transfer Syntax UID. The group
    ends at the first element of another group, or where fewer than 8 bytes remain: a header cut
    there belongs to the data set, whose reader reports it.
    """
    if not is_part10(data):
        raise NotPart10("no DICM marker after a 128-byte preamble")
    head, long_length = _EXPLICIT_HEAD.unpack_from, _LONG_LENGTH.unpack_from
    end, pos = len(data), META_START
    found: dict[int, tuple[bytes, Any]] = {}  # values: slices of `data`
    while pos + 8 <= end:
        group, element, vr, length = head(data, pos)
        if group != 0x0002:
            break
        if vr in LONG_VRS:
            if pos + 12 > end:
                raise (NotPart10 if whole else MetaPastData)(f"the file ends in the header of meta element (0002,{element:04X})")
            (length,) = long_length(data, pos + 8)
            pos += 12
        elif vr in VRS:
            pos += 8
        else:
            raise NotPart10(f"meta element (0002,{element:04X}) is not in Explicit VR Little Endian")
        if length == UNDEFINED_LENGTH:
            raise NotPart10(f"meta element (0002,{element:04X}) has an undefined length")
        if pos + length > end:
            raise (NotPart10 if whole else MetaPastData)(f"meta element (0002,{element:04X}) runs past the end of the file")
        found[0x00020000 | element] = (vr, data[pos : pos + length])
        pos += length
    else:
        if not whole:
            raise MetaPastData("the file meta group may go on past the bytes read")
    elements: dict[int, tuple[bytes, bytes]] = {tag: (vr, bytes(value)) for tag, (vr, value) in found.items()} if isinstance(data, memoryview) else found
    syntax_element = elements.get(TRANSFER_SYNTAX_UID)
    syntax = syntax_element[1].rstrip(b"\0 ").decode("ascii", "replace") if syntax_element else ""
    if not syntax:
        raise NotPart10("the file meta group has no Transfer Syntax UID")
    return FileMeta(elements, syntax, pos)
