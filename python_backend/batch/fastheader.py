"""A fast path for `flatten.read_row`: the header of a plain little-endian Part 10 file, turned into
a row straight from its bytes.

Why: building a pydicom Dataset costs most of the time of a metadata extraction (~4 ms a file
here, 4x what `dcmdump` needs), and an archive has tens of thousands of files. This reader covers
the common case only — Part 10 files in Implicit or Explicit VR Little Endian (encapsulated
transfer syntaxes included: their headers are Explicit VR LE), Latin-1 or UTF-8 text — and gives
up (returns None) on anything else or anything odd: big endian, deflate, other character sets,
a value running past the end of the data, an unexpected delimiter. `read_row` then takes pydicom's
path, which is also the oracle the tests compare this reader's rows with, file by file.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from struct import unpack_from
from typing import Any

from dicom_hub.contract.dicom.encoding import (
    DEFLATED_EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    IMPLICIT_VR_LE,
    ITEM,
    ITEM_END,
    LONG_VRS,
    SEQUENCE_END,
    UNDEFINED_LENGTH,
    VRS,
    MetaPastData,
    NotPart10,
    read_file_meta,
)
from dicom_hub.contract.dicom.pydicom_tables import private_dictionary_vr

from .flatten import _FAST_CHARSETS, EXCLUDED_TAGS, column_label, implicit_vr, raw_text

NOT_HANDLED = frozenset({EXPLICIT_VR_BE, DEFLATED_EXPLICIT_VR_LE})
# Explicit VRs read as they are (UN is looked up: `_Reader._vr`).
_VR_NAMES: dict[bytes | None, str] = {vr: vr.decode() for vr in VRS if vr != b"UN"}
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_SEQ_END_BYTES = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0


class _GiveUp(Exception):
    """Not a case this reader handles; pydicom will read the file instead."""


class _NeedMore(Exception):
    """The header runs past the bytes read so far."""


def read_fast(path, row: dict[str, str], max_binary: int, include_file_meta: bool, head: int = 65536, limit: int = 1 << 24) -> bool | None:
    """Fill `row` from the file at `path` when this reader handles it (None: use pydicom)."""
    try:
        with open(path, "rb") as f:
            data = f.read(head)
            if len(data) < head:
                return row_from_bytes(data, row, max_binary, include_file_meta, complete=True, path=path)
            end = os.fstat(f.fileno()).st_size
            ending = (end, os.pread(f.fileno(), len(_SEQ_END_BYTES), end - len(_SEQ_END_BYTES)))
            try:
                return row_from_bytes(data, row, max_binary, include_file_meta, complete=False, ending=ending, path=path)
            except _NeedMore:
                rest = f.read(limit)
                data += rest
                if len(data) >= limit + head:
                    return None
                return row_from_bytes(data, row, max_binary, include_file_meta, complete=True, path=path)
    except (OSError, _NeedMore):
        return None


def row_from_bytes(
    data: bytes, row: dict[str, str], max_binary: int, include_file_meta: bool, complete: bool, ending: tuple[int, bytes] | None = None, path: Any = None
) -> bool | None:
    """Fill `row` from a file's first bytes: True when done, None to let pydicom read the file.

    `complete` says `data` is the whole file; otherwise running out of bytes raises `_NeedMore`,
    and `ending` is the file's size and its last 8 bytes. `path` (the file) is walked to the end
    when elements follow the pixel data (`_Reader.pixels_end_cleanly`).
    """
    try:
        meta = read_file_meta(data, whole=complete)
    except MetaPastData:
        raise _NeedMore from None
    except NotPart10:
        return None
    if meta.transfer_syntax in NOT_HANDLED:
        return None
    if complete:
        ending = (len(data), data[-len(_SEQ_END_BYTES) :])
    reader = _Reader(data, max_binary, complete, ending, path)
    body: dict[str, str] = {}
    try:
        meta_row = _meta_row(meta.elements, max_binary)
        reader.dataset(meta.data_set_start, len(data), meta.transfer_syntax == IMPLICIT_VR_LE, "", body, "latin_1", 0, top=True)
    except _GiveUp:
        return None
    if include_file_meta:
        row.update(meta_row)
    row.update(body)
    return True


def _meta_row(elements: dict[int, tuple[bytes, bytes]], max_binary: int) -> dict[str, str]:
    """The file meta elements' columns, converted as the data set's are."""
    row: dict[str, str] = {}
    for tag, (vr_bytes, value) in elements.items():
        vr = _VR_NAMES.get(vr_bytes) or implicit_vr(tag)  # stored as UN: the dictionary's VR, as pydicom decodes it
        if vr == "SQ":
            raise _GiveUp  # no sequence belongs in the file meta: let pydicom judge the file
        text = raw_text(value, vr, True, "latin_1", max_binary)
        if text is not None:
            row[column_label(tag)] = text
    return row


class _Reader:
    def __init__(self, data: bytes, max_binary: int, complete: bool, ending: tuple[int, bytes] | None, path: Any) -> None:
        self.data = data
        self.max_binary = max_binary
        self.complete = complete
        self.ending = ending
        self.path = path

    def pixels_end_cleanly(self, pos: int, length: int) -> bool:
        """Whether the file is whole from the pixel data (value at `pos`) on, as pydicom's path
        judges it (`contract.structure.cut_short`, which flags the row otherwise): the pixel data
        is the last element, or what follows it (trailing padding, a signature) is whole; a cut
        inside the pixel data itself does not count, a length beyond the whole file does."""
        if self.ending is None:
            return False
        size, last = self.ending
        if length != UNDEFINED_LENGTH and length > size:
            return False
        if last == _SEQ_END_BYTES if length == UNDEFINED_LENGTH else pos + length >= size:
            return True  # nothing after the pixel data (encapsulated: its delimiter ends the file)
        if self.path is None:
            return False
        from dicom_hub.contract.structure import cut_short

        return cut_short(Path(self.path)) is None

    def _need(self, end: int) -> None:
        if end > len(self.data):
            if self.complete:
                raise _GiveUp  # truncated: pydicom decides how to report it
            raise _NeedMore

    def dataset(self, pos: int, end: int, implicit: bool, prefix: str, row: dict[str, str], encoding: str, pixel_rep: int, *, top: bool = False) -> int:
        """Parse elements from `pos` to `end` (or an item delimiter); return the position after."""
        data, size, max_binary = self.data, len(self.data), self.max_binary
        creators: dict[int, str] = {}
        while pos < end:
            if pos + 8 > size:
                self._need(pos + 8)
            if implicit:
                group, element, length = unpack_from("<HHL", data, pos)
                vr_bytes = None
            else:  # a delimiter's 4-byte length reads as a VR here: it is caught below before use
                group, element, vr_bytes, length = unpack_from("<HH2sH", data, pos)
            tag = group << 16 | element
            if group == 0xFFFE:
                if tag == ITEM_END:
                    return pos + 8
                raise _GiveUp  # an item or sequence delimiter where an element should be
            if vr_bytes in LONG_VRS:
                self._need(pos + 12)
                length = unpack_from("<L", data, pos + 8)[0]
                pos += 12
            else:
                pos += 8
            if top and tag in _PIXEL_TAGS:
                if not self.pixels_end_cleanly(pos, length):
                    raise _GiveUp
                return size
            vr = _VR_NAMES.get(vr_bytes)  # None for implicit VR and for UN
            if vr is None:
                vr = self._vr(vr_bytes, tag, group, element, pixel_rep, creators)
            label = column_label(tag)
            if vr == "SQ" or length == UNDEFINED_LENGTH:
                if vr not in ("SQ", "UN"):
                    raise _GiveUp  # undefined length outside a sequence (e.g. nested encapsulated data)
                pos = self.sequence(pos, length, implicit or vr == "UN", prefix, label, row, encoding, pixel_rep)
                continue
            if pos + length > size:
                self._need(pos + length)
            value = data[pos : pos + length]
            pos += length
            if group & 1:  # private: never an excluded tag
                if 0x0010 <= element <= 0x00FF:
                    creators[tag] = value.decode(encoding, errors="replace").strip(" \x00")
            elif group <= 0x0028:
                if tag == 0x00080005:
                    fast = _FAST_CHARSETS.get(_single_charset(value))
                    if fast is None:
                        raise _GiveUp
                    encoding = fast
                elif tag == 0x00280103 and length == 2:
                    pixel_rep = unpack_from("<H", value)[0]
            elif group >= 0x5000 and (tag in EXCLUDED_TAGS or (group & 0xFF01) in (0x6000, 0x5000) and element == 0x3000):
                continue
            text = raw_text(value, vr, True, encoding, max_binary)
            if text is not None:
                row[prefix + label] = text
        if pos > end:
            raise _GiveUp
        return pos

    def _vr(self, vr_bytes: bytes | None, tag: int, group: int, element: int, pixel_rep: int, creators: dict[int, str]) -> str:
        """The VR of an implicit-VR element, or of an explicit one stored as UN (or unknown bytes)."""
        if vr_bytes is not None:
            if vr_bytes != b"UN":
                raise _GiveUp  # not a VR this reader knows: let pydicom judge the file
            if group & 1:  # explicit UN, private: stays UN (as pydicom keeps it)
                return "LO" if 0x0010 <= element <= 0x00FF else "UN"
            return implicit_vr(tag, pixel_rep)  # explicit UN for a known tag: pydicom decodes it
        if group & 1:
            if 0x0010 <= element <= 0x00FF:
                return "LO"
            creator = creators.get(group << 16 | element >> 8)
            known = _private_vr(tag, creator) if creator else None
            if known is None or " or " in known:
                return "UN"
            return known
        return implicit_vr(tag, pixel_rep)

    def sequence(self, pos: int, length: int, implicit: bool, prefix: str, label: str, row: dict[str, str], encoding: str, pixel_rep: int) -> int:
        data = self.data
        end = len(data) + 1 if length == UNDEFINED_LENGTH else pos + length
        if length != UNDEFINED_LENGTH:
            self._need(end)
        name = label.split(" ")[0] if " " in label else label
        index = 0
        while pos < end:
            self._need(pos + 8)
            tag, item_length = unpack_from("<LL", data, pos)
            tag = (tag & 0xFFFF) << 16 | tag >> 16  # group and element swapped by the 32-bit read
            pos += 8
            if tag == SEQUENCE_END:
                break
            if tag != ITEM:
                raise _GiveUp
            item_prefix = f"{prefix}{name}[{index}]."
            if item_length == UNDEFINED_LENGTH:
                pos = self.dataset(pos, len(data) + 1, implicit, item_prefix, row, encoding, pixel_rep)
            else:
                self._need(pos + item_length)
                self.dataset(pos, pos + item_length, implicit, item_prefix, row, encoding, pixel_rep)
                pos += item_length
            index += 1
        if index == 0:
            row[prefix + label] = ""
        return pos


@cache
def _private_vr(tag: int, creator: str) -> str | None:
    return private_dictionary_vr(tag, creator)


def _single_charset(value: bytes) -> str:
    text = value.decode("ascii", errors="replace").strip(" \x00")
    return "\x00multiple" if "\\" in text else text
