"""A fast path for `info`: the summary elements read straight from the bytes of a plain file,
without importing pydicom.

Why: `dcmread` builds a raw element for every element of the file, and `import pydicom` alone
costs ~0.45 s (numpy and every pixel plugin), more than a whole stream of 1,000 `info` requests
should take. `info` needs only a few top-level elements. This reader walks the top level of a
Part 10 file in Implicit or Explicit VR Little Endian, keeps the raw bytes of the summary
elements and converts them as pydicom's converters (`pydicom.values`) and `element_value` would,
for the VRs the summary elements have (PN, LO, SH, CS, AS, DA, TM, UI, DS, IS, US); it looks
VRs, keywords and UID names up in pydicom's own tables (`contract/dicom/pydicom_tables.py`).

It gives up (None: `metadata.info` takes pydicom's path) on anything else or anything odd: no
preamble, another transfer syntax, a character set other than the default, Latin-1 or UTF-8,
text that does not decode or holds code extensions (ESC), an undefined length other than a
sequence's (whose items it walks through: encapsulated pixel data, say), tags out of order, a summary element past the first HEAD bytes, a
value running past the end of the file (pydicom decides how to report a truncated file), a VR
stored as UN, not given by the dictionary or not one of those above, binary numbers of an odd
length, DS/IS text that pydicom would not parse. The tests compare its answers with pydicom's
path on pydicom's test files and pydicom-data, file by file, and each converter with pydicom's
on random values.
"""

from __future__ import annotations

import os
import re
from functools import cache, lru_cache
from pathlib import Path
from struct import Struct, unpack_from
from typing import Any

from dicom_hub.contract.dicom.encoding import (
    EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    ITEM,
    ITEM_END,
    LONG_VRS,
    SEQUENCE_END,
    UNDEFINED_LENGTH,
    VRS,
    NotPart10,
    read_file_meta,
)
from dicom_hub.contract.dicom.pydicom_tables import TablesUnavailable, dictionary, tags_by_keyword, uid_name
from dicom_hub.contract.info import arrange_info, info_fields

HEAD = 16384  # bytes read first; enough for the header of nearly every file
MAX_VALUE = 4096  # a longer summary value is odd: pydicom reads it
_CHARSET_TAG = 0x00080005
_VR_TEXT = {vr: vr.decode("ascii") for vr in VRS}
# Specific Character Set -> the Python codec pydicom decodes text with (pydicom.charset)
_CHARSETS = {"": "iso8859", "ISO_IR 6": "iso8859", "ISO_IR 100": "latin_1", "ISO_IR 192": "UTF8"}
_DEFAULT_ENCODING = "iso8859"  # pydicom.charset.default_encoding: also every non-text string VR
_DS = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)
_IS = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_ESC = b"\x1b"
_MAX_DEPTH = 16  # nested sequences deeper than this are odd: pydicom reads them
_IMPLICIT_HEAD = Struct("<HHL")  # group, element, length
_EXPLICIT_HEAD = Struct("<HH2sH")  # group, element, VR, length (of a short VR)
_LONG_LENGTH = Struct("<L")  # after the 2 reserved bytes of a long VR


class _GiveUp(Exception):
    """Not a file this reader handles; pydicom reads it instead."""


def fast_info(path: Path) -> dict[str, Any] | None:
    """The `info` metadata of the file at `path`, or None when pydicom's path must answer."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))  # no buffered file object: fewer system calls
        try:
            size = os.fstat(fd).st_size
            raws, ts = _summary_raws(os.read(fd, HEAD), size, fd)
        finally:
            os.close(fd)
        return _arrange(path, size, raws, ts)
    except (_GiveUp, OSError, TablesUnavailable):
        return None


def _summary_raws(data: bytes, size: int, fd: int) -> tuple[dict[int, tuple[str, bytes]], str]:
    """tag -> (VR, value bytes) of each summary element (and the character set), and the
    transfer syntax UID."""
    try:
        meta = read_file_meta(data, whole=len(data) >= size)
    except NotPart10:
        raise _GiveUp from None  # no preamble, an odd meta group, or one longer than HEAD
    ts = meta.transfer_syntax
    if ts not in (IMPLICIT_VR_LE, EXPLICIT_VR_LE):
        raise _GiveUp
    body: dict[int, tuple[str, bytes]] = {}
    _walk(data, size, fd, meta.data_set_start, ts == IMPLICIT_VR_LE, body)
    return body, ts


def _walk(data: bytes, size: int, fd: int, pos: int, implicit: bool, found: dict[int, tuple[str, bytes]], depth: int = 0) -> int:
    """Walk the elements of a data set from `pos` (values are skipped, not read: a truncated or
    malformed file makes the walk give up, as pydicom would complain), keeping the wanted ones of
    the top level; return where the walk stopped: the end of the file, or, in a sequence item of
    undefined length (`depth` > 0), after its delimiter. This loop is most of the time of a
    request (a CT header has a few hundred elements): it unpacks straight from the bytes read."""
    wanted = _wanted_tags() if depth == 0 else {}
    previous = -1
    read = len(data)
    unpack = _IMPLICIT_HEAD.unpack_from if implicit else _EXPLICIT_HEAD.unpack_from  # bound once: the loop runs per element
    long_length = _LONG_LENGTH.unpack_from
    vr_bytes = b""
    while pos < size:
        if pos + 12 <= read:
            head, at = data, pos
        else:  # past HEAD (e.g. trailing padding), or the file's last bytes
            head, at = os.pread(fd, 12, pos), 0
            if len(head) < 8:
                raise _GiveUp
        if implicit:
            group, element, length = unpack(head, at)
        else:
            group, element, vr_bytes, length = unpack(head, at)
        tag = group << 16 | element
        if group == 0xFFFE:  # only the end of an item is expected here
            if depth and tag == ITEM_END and _IMPLICIT_HEAD.unpack_from(head, at)[2] == 0:
                return pos + 8
            raise _GiveUp
        if tag <= previous:
            raise _GiveUp
        previous = tag
        if implicit:
            pos += 8
        elif vr_bytes in LONG_VRS:  # 2 reserved bytes, then a 4-byte length
            if len(head) - at < 12:
                raise _GiveUp
            length = long_length(head, at + 8)[0]
            pos += 12
        elif vr_bytes in VRS:
            pos += 8
        else:  # not a VR: e.g. an implicit VR dataset under an explicit transfer syntax
            raise _GiveUp
        if length == UNDEFINED_LENGTH:  # a sequence to walk through; anything else (encapsulated data) is pydicom's
            if depth >= _MAX_DEPTH or (_dictionary_vr(tag) if implicit else _VR_TEXT[vr_bytes]) != "SQ":
                raise _GiveUp
            pos = _skip_sequence(data, size, fd, pos, implicit, depth + 1)
            continue
        if pos + length > size:
            raise _GiveUp  # a truncated file
        if tag in wanted:
            if pos + length > read or length > MAX_VALUE:
                raise _GiveUp  # beyond the bytes read, or too large to keep in the cache
            found[tag] = (_vr(tag, None if implicit else _VR_TEXT[vr_bytes]), data[pos : pos + length])
        pos += length
    if depth:
        raise _GiveUp  # the file ends inside a sequence item
    return pos


def _skip_sequence(data: bytes, size: int, fd: int, pos: int, implicit: bool, depth: int) -> int:
    """The position after the delimiter of the sequence of undefined length whose items start at
    `pos`: items of a defined length are skipped, the others walked through (nothing is kept)."""
    while True:
        head = data[pos : pos + 8] if pos + 8 <= len(data) else os.pread(fd, 8, pos)
        if len(head) < 8:
            raise _GiveUp
        group, element, length = _IMPLICIT_HEAD.unpack_from(head)  # item tags are the same in every VR encoding
        tag = group << 16 | element
        pos += 8
        if tag == SEQUENCE_END:
            if length:
                raise _GiveUp
            return pos
        if tag != ITEM:
            raise _GiveUp
        if length == UNDEFINED_LENGTH:
            pos = _walk(data, size, fd, pos, implicit, {}, depth=depth)
        elif pos + length > size:
            raise _GiveUp
        else:
            pos += length


def _vr(tag: int, stored: str | None) -> str:
    """The stored VR (one of _VRS), else the dictionary's when it is one VR; never UN."""
    if stored is None:
        known = _dictionary_vr(tag)
        if known is None or " or " in known:
            raise _GiveUp
        return known
    if stored == "UN":
        raise _GiveUp
    return stored


def _dictionary_vr(tag: int) -> str | None:
    entry = dictionary().get(tag)
    return entry[0] if entry else None


@cache
def _wanted_tags() -> dict[int, str]:
    """tag -> keyword of every summary element, plus the character set (needed to decode them)."""
    tags = tags_by_keyword()
    wanted = {tags[keyword]: keyword for keywords in info_fields().values() for keyword in keywords}  # KeyError: a keyword pydicom lacks
    return {**wanted, _CHARSET_TAG: "SpecificCharacterSet"}


def _arrange(path: Path, size: int, raws: dict[int, tuple[str, bytes]], ts: str) -> dict[str, Any]:
    encoding = _DEFAULT_ENCODING
    if _CHARSET_TAG in raws:
        vr, value = raws[_CHARSET_TAG]
        charset = value.decode(_DEFAULT_ENCODING).rstrip(" \0")  # the value pydicom looks up
        if vr != "CS" or charset not in _CHARSETS:
            raise _GiveUp  # several character sets (code extensions), or one this reader does not decode
        encoding = _CHARSETS[charset]
    values: dict[str, Any] = {}
    keywords = _wanted_tags()
    for tag in sorted(raws):
        if tag != _CHARSET_TAG:
            summary = _summary_value(*raws[tag], encoding)
            values[keywords[tag]] = list(summary) if isinstance(summary, list) else summary  # a copy: the cache keeps its own
    file = {
        "path": str(path),
        "size_bytes": size,
        "transfer_syntax": ts,
        "transfer_syntax_name": uid_name(ts),
        "sop_class_name": _sop_class_name(raws.get(0x00080016)),
    }
    return arrange_info(values, file)


def _sop_class_name(raw: tuple[str, bytes] | None) -> str | None:
    """pydicom's path names the SOP Class UID when the element is there; this path only when
    it holds one UID (an empty or multi-valued one is odd: pydicom's path reports it)."""
    if raw is None:
        return None
    vr, value = raw
    uid = _summary_value(vr, value, _DEFAULT_ENCODING) if vr == "UI" and value else None
    if not isinstance(uid, str):
        raise _GiveUp
    return uid_name(uid)


@lru_cache(maxsize=4096)
def _summary_value(vr: str, value: bytes, encoding: str) -> Any:
    """What `element_value(convert_raw_data_element(raw))` gives for one raw little-endian element
    of the default pydicom configuration: None for no value, else a string, a number or a list.
    Cached: the files of a series share most of their summary values (patient, study, series,
    equipment)."""
    if not value:
        return None  # pydicom: an empty value, VM 0
    if vr == "US":
        if len(value) % 2:
            raise _GiveUp  # pydicom retries other VRs: its path reports what it found
        numbers = unpack_from(f"<{len(value) // 2}H", value)
        return numbers[0] if len(numbers) == 1 else list(numbers)
    if vr in ("CS", "AS", "DA", "TM"):  # pydicom.values.convert_string
        return _texts(value.decode(_DEFAULT_ENCODING).rstrip(" \0").split("\\"))
    if vr == "UI":  # convert_UI; UID() strips
        return _texts(value.decode(_DEFAULT_ENCODING).rstrip("\0 ").split("\\"))
    if vr == "DS":  # convert_DS_string: DSfloat keeps the stripped string it was made from
        return _numbers(value.decode(_DEFAULT_ENCODING).strip().rstrip(" \0").split("\\"), _DS)
    if vr == "IS":  # convert_IS_string: IS keeps the stripped string it was made from
        return _numbers(value.decode(_DEFAULT_ENCODING).rstrip(" \0").split("\\"), _IS)
    if vr in ("LO", "SH"):  # convert_text: decoded, split, each value without trailing padding
        return _texts([item.rstrip("\0 ") for item in _decoded(value, encoding).split("\\")])
    if vr == "PN":  # convert_PN: str(PersonName) joins its groups without trailing empty ones
        return _texts([_person_name(item) for item in _decoded(value.rstrip(b"\0 "), encoding).split("\\")])
    raise _GiveUp


def _texts(items: list[str]) -> Any:
    """One value (None when empty: VM 0) or a list of values, each without surrounding spaces."""
    if len(items) == 1:
        return items[0].strip() if items[0] else None
    return [item.strip() for item in items]


def _numbers(items: list[str], pattern: re.Pattern[str]) -> Any:
    """DS or IS values as their stored text, when each is a number pydicom parses."""
    if len(items) == 1 and not items[0].strip():
        return None  # pydicom keeps the blank string: no value
    if not all(pattern.fullmatch(item) for item in items):
        raise _GiveUp  # text pydicom may refuse to convert: its path reports it
    return _texts(items)


def _decoded(value: bytes, encoding: str) -> str:
    """pydicom.charset.decode_bytes for a single character set without code extensions."""
    if _ESC in value:
        raise _GiveUp
    try:
        return value.decode(encoding)
    except UnicodeError:
        raise _GiveUp from None  # pydicom warns and replaces: its path answers


def _person_name(text: str) -> str:
    groups = text.split("=")
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)
