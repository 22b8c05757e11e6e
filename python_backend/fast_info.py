"""A fast path for `info`: the summary elements read straight from the bytes of a plain file.

Why: `dcmread` builds a raw element for every element of the file, and that is most of the time
of an `info` request (the stream hot path). `info` needs only a few top-level elements. This reader walks the top level of a Part 10 file in Implicit or Explicit VR Little
Endian, keeps the raw bytes of the summary elements, and has them converted by pydicom's own
converter, exactly as `metadata.info` converts the elements `dcmread` found.

It gives up (None: `metadata.info` takes pydicom's path) on anything else or anything odd: no
preamble, another transfer syntax, a character set other than the default, Latin-1 or UTF-8, an
undefined length (sequences, encapsulated pixel data), tags out of order, a summary element past
the first HEAD bytes, a value running past the end of the file (pydicom decides how to report a truncated file), a VR stored as UN or not
given by the dictionary, DS/IS text that pydicom would not parse. The tests compare its answers
with pydicom's path on pydicom's test files and pydicom-data, file by file.
"""

from __future__ import annotations

import os
import re
from functools import cache, lru_cache
from pathlib import Path
from struct import unpack_from
from typing import Any

from dicom_hub.contract.info import arrange_info

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
HEAD = 16384  # bytes read first; enough for the header of nearly every file
MAX_VALUE = 4096  # a longer summary value is odd: pydicom reads it
_CHARSET_TAG = 0x00080005
_VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split())
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_KNOWN_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"})
_DS = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_IS = re.compile(r"\s*[+-]?\d+\s*")
_UNDEFINED = 0xFFFFFFFF


class _GiveUp(Exception):
    """Not a file this reader handles; pydicom reads it instead."""


def fast_info(path: Path) -> dict[str, Any] | None:
    """The `info` metadata of the file at `path`, or None when pydicom's path must answer."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            data = f.read(HEAD)
            raws, ts = _summary_raws(data, size, f.fileno())
        return _arrange(path, size, raws, ts)
    except (_GiveUp, OSError):
        return None


def _summary_raws(data: bytes, size: int, fd: int) -> tuple[dict[int, tuple[str, bytes, bool]], str]:
    """tag -> (VR, value bytes, implicit) of each summary element (and the character set), and the
    transfer syntax UID."""
    if len(data) < 144 or data[128:132] != b"DICM":
        raise _GiveUp
    meta: dict[int, tuple[str, bytes, bool]] = {}
    pos = _walk(data, size, fd, 132, False, meta, meta_only=True)
    ts_raw = meta.get(0x00020010)
    ts = ts_raw[1].decode("ascii", errors="replace").rstrip("\0 ") if ts_raw else ""
    if ts not in (IMPLICIT_LE, EXPLICIT_LE):
        raise _GiveUp
    body: dict[int, tuple[str, bytes, bool]] = {}
    _walk(data, size, fd, pos, ts == IMPLICIT_LE, body)
    return body, ts


def _walk(data: bytes, size: int, fd: int, pos: int, implicit: bool, found: dict[int, tuple[str, bytes, bool]], meta_only: bool = False) -> int:
    """Walk the top-level elements from `pos` to the end of the file (values are skipped, not
    read: a truncated or malformed file makes the walk give up, as pydicom would complain),
    keeping the wanted ones; return where the walk stopped."""
    wanted = _wanted_tags()
    previous = -1
    while pos < size:
        head = data[pos : pos + 12] if pos + 12 <= len(data) else os.pread(fd, 12, pos)  # past HEAD: e.g. trailing padding
        if len(head) < 8:
            raise _GiveUp
        group, element = unpack_from("<HH", head)
        tag = group << 16 | element
        if meta_only and group != 0x0002:
            return pos
        if tag <= previous or group == 0xFFFE:
            raise _GiveUp
        previous = tag
        if implicit:
            vr = None
            length = unpack_from("<L", head, 4)[0]
            pos += 8
        else:
            vr_bytes = head[4:6]
            if vr_bytes not in _VRS:  # e.g. an implicit VR dataset under an explicit transfer syntax
                raise _GiveUp
            if vr_bytes in _LONG_VRS:
                if len(head) < 12:
                    raise _GiveUp
                length = unpack_from("<L", head, 8)[0]
                pos += 12
            else:
                length = unpack_from("<H", head, 6)[0]
                pos += 8
            vr = vr_bytes.decode("latin_1")
        if length == _UNDEFINED or pos + length > size:
            raise _GiveUp  # a sequence or encapsulated data to scan, or a truncated file
        if tag in wanted or meta_only:
            if pos + length > len(data) or length > MAX_VALUE:
                raise _GiveUp  # beyond the bytes read, or too large to keep in the cache
            found[tag] = (_vr(tag, vr), data[pos : pos + length], implicit)
        pos += length
    return pos


def _vr(tag: int, stored: str | None) -> str:
    known = _dictionary_vr(tag)
    if stored is None:
        if known is None or " or " in known:
            raise _GiveUp
        return known
    if stored == "UN" or not stored.isalpha() or not stored.isupper():
        raise _GiveUp
    return stored


@cache
def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


@cache
def _wanted_tags() -> dict[int, str]:
    """tag -> keyword of every summary element, plus the character set (needed to decode them)."""
    from dicom_hub.python_backend.metadata import _info_tags

    return {**{tag: keyword for keyword, tag in _info_tags().items()}, _CHARSET_TAG: "SpecificCharacterSet"}


def _arrange(path: Path, size: int, raws: dict[int, tuple[str, bytes, bool]], ts: str) -> dict[str, Any]:
    from dicom_hub.python_backend.metadata import _values_unchecked
    from pydicom.charset import convert_encodings, default_encoding
    from pydicom.uid import UID

    with _values_unchecked():
        encoding: tuple[str, ...] = (default_encoding,)
        if _CHARSET_TAG in raws:
            charset = _converted(_CHARSET_TAG, *raws[_CHARSET_TAG], encoding)[1]
            names = [charset] if isinstance(charset, str) else list(charset)
            if any(name not in _KNOWN_CHARSETS for name in names) or len(names) > 1:
                raise _GiveUp
            if charset:
                encoding = tuple(convert_encodings(charset))
        values: dict[str, Any] = {}
        keywords = _wanted_tags()
        for tag in sorted(raws):
            if tag != _CHARSET_TAG:
                summary = _converted(tag, *raws[tag], encoding)[0]
                values[keywords[tag]] = list(summary) if isinstance(summary, list) else summary  # a copy: the cache keeps its own
        sop_class = _converted(0x00080016, *raws[0x00080016], encoding)[1] if 0x00080016 in raws else None
    if sop_class is not None and not isinstance(sop_class, UID):
        raise _GiveUp
    file = {
        "path": str(path),
        "size_bytes": size,
        "transfer_syntax": ts,
        "transfer_syntax_name": UID(ts).name,
        "sop_class_name": sop_class.name if sop_class is not None else None,
    }
    return arrange_info(values, file)


@lru_cache(maxsize=4096)
def _converted(tag: int, vr: str, value: bytes, implicit: bool, encoding: tuple[str, ...]) -> tuple[Any, Any]:
    """(summary value, pydicom's value) of one raw element, by pydicom's own converter. Cached:
    the files of a series share most of their summary values (patient, study, series, equipment)."""
    from dicom_hub.python_backend._values import element_value
    from pydicom.dataelem import RawDataElement, convert_raw_data_element
    from pydicom.tag import BaseTag

    if vr in ("DS", "IS") and value.strip(b" \0"):
        pattern = _DS if vr == "DS" else _IS
        if not all(pattern.fullmatch(part) for part in value.decode("latin_1").rstrip("\0 ").split("\\")):
            raise _GiveUp  # text pydicom may refuse to convert: its path reports it
    raw = RawDataElement(BaseTag(tag), vr, len(value), value, 0, implicit, True)
    try:
        elem = convert_raw_data_element(raw, encoding=list(encoding))
        return element_value(elem), elem.value
    except Exception:  # a value pydicom's path would report: let it
        raise _GiveUp from None
