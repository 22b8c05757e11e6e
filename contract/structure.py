"""A file's element structure checked by walking the bytes (no recursion, no pydicom): how deep
its sequences nest, and whether a declared length exceeds the whole file.

Thousands of nested sequences in a 100 KB file make toolkits crawl for minutes (gdcmdump) or
overflow recursive parsers (pydicom's RecursionError); a length of 0xFFFFFFF0 in a small file
makes GDCM spin until the timeout. Real data sets nest a few levels, deep structured reports a
few dozen; toolkit adapters refuse files nested deeper than 100, or with an element longer than
the whole file, as `decode_error` before starting a tool (the python backend refuses both when reading).

The walk covers little endian files (explicit and implicit VR), which is what the toolkits are
given in practice; for anything it cannot follow (big endian, deflated, garbage) it reports
nothing and the tool decides.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from dicom_hub.contract.dicom.encoding import (
    DEFLATED_EXPLICIT_VR_LE,
    IMPLICIT_VR_LE,
    ITEM,
    ITEM_END,
    LONG_VRS,
    SEQUENCE_END,
    UNDEFINED_LENGTH,
    NotPart10,
    read_file_meta,
)
from dicom_hub.contract.errors import ErrorCode, HubError

MAX_DEPTH = 200  # sequences and items both count: 100 levels of nested sequences
_EXPLICIT_LE = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4", "1.2.840.10008.1.2.5")  # prefixes: every compressed syntax is explicit LE
_DEFLATED = 1 << 62  # added to the start offset of a deflated data set
_STEPS = 2_000_000  # elements walked at most: bounds the time on any input


class _PastTheEnd(Exception):
    """An element declares more bytes than the whole file holds."""


def check_file(path: Path, limit: int = MAX_DEPTH) -> None:
    """`decode_error` when `path`'s sequences nest deeper than `limit`, or an element is longer than the file."""
    import mmap

    try:
        # Mapped, not read: the walk touches element headers only, not a large file's pixel data.
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            depth = nesting_depth(data, limit)  # type: ignore[arg-type]
    except (OSError, ValueError):  # unreadable or empty: the tool reports it
        return
    except _PastTheEnd as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"{path.name} is truncated or corrupt: {err}", "the file is incomplete or corrupt; copy or export it again") from None
    if depth is not None and depth > limit:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"{path.name} nests sequences more than {limit // 2} levels deep (a sequence and its item count as two of {limit} levels)",
            "real data sets nest a few levels; the file is corrupt or crafted",
        )


def nesting_depth(data: bytes, stop_at: int = MAX_DEPTH) -> int | None:
    """The deepest sequence nesting (stops counting past `stop_at`); None when the walk cannot follow the file."""
    walk = _walk(data, stop_at)
    return None if walk is None else walk.deepest


def cut_short(path: Path) -> str | None:
    """Why `path`'s header ends before its last element does (a file copied or sent in part), or
    None when it ends cleanly or the walk cannot follow it. A cut inside Pixel Data is not reported:
    the header before it is whole."""
    import mmap

    try:
        with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            walk = _walk(data, MAX_DEPTH)  # type: ignore[arg-type]
    except (OSError, ValueError):
        return None
    except _PastTheEnd as err:
        return str(err)
    if walk is None or walk.cut is None or walk.cut_tag == 0x7FE00010:
        return None
    return walk.cut


@dataclass(frozen=True)
class _Walk:
    deepest: int  # the deepest nesting seen (counting stops past `stop_at`)
    cut: str | None = None  # why the element stream stops before its end, if it does
    cut_tag: int | None = None  # the element it stops in


def _walk(data: bytes, stop_at: int) -> _Walk | None:
    """Walk every element header (no recursion, bounded steps); None when the file is not one the
    walk can follow (not Part 10, big endian, garbage)."""
    start, explicit = _dataset_start(data)
    if start is not None and start >= _DEFLATED:
        data, start, explicit = _inflated(data[start - _DEFLATED :]), 0, True
    if start is None:
        return None
    ends: list[int | None] = []  # one entry per open sequence or item: its end offset, None if undefined
    deepest, pos = 0, start
    for _ in range(_STEPS):
        while ends and ends[-1] is not None and pos >= ends[-1]:
            ends.pop()  # a defined-length sequence or item is over
        if pos + 8 > len(data):
            if pos < len(data):
                return _Walk(deepest, f"the file ends {len(data) - pos} bytes into an element header at byte {pos}")
            if ends:
                return _Walk(deepest, f"the file ends inside {len(ends)} open sequence or item level(s)")
            return _Walk(deepest)
        group, element, length = struct.unpack_from("<HHI", data, pos)
        tag = group << 16 | element
        if tag in (ITEM, ITEM_END, SEQUENCE_END):
            pos += 8
            if tag == ITEM:
                ends.append(None if length == UNDEFINED_LENGTH else pos + length)
            elif ends:
                ends.pop()
            deepest = max(deepest, len(ends))
            if deepest > stop_at:
                return _Walk(deepest)
            continue
        vr, pos, length = _element_header(data, pos, explicit)
        if vr is None:
            cut = f"the file ends inside the header of element ({group:04X},{element:04X})" if pos + 12 > len(data) else None
            return _Walk(deepest, cut, tag)
        if tag == 0x7FE00010 and length == UNDEFINED_LENGTH:
            pos = _after_fragments(data, pos)  # encapsulated pixel data: fragments, not data sets
            continue
        if length != UNDEFINED_LENGTH and length > len(data):  # a length beyond the whole file, not a cut-short value the tools report themselves
            raise _PastTheEnd(f"element ({group:04X},{element:04X}) declares {length} bytes but only {len(data) - pos} remain")
        if vr == b"SQ" or length == UNDEFINED_LENGTH:
            ends.append(None if length == UNDEFINED_LENGTH else pos + length)
            deepest = max(deepest, len(ends))
            if deepest > stop_at:
                return _Walk(deepest)
            continue
        if pos + length > len(data):
            return _Walk(deepest, f"element ({group:04X},{element:04X}) at byte {pos} needs {length} bytes but only {len(data) - pos} remain", tag)
        pos += length
    return _Walk(deepest)


def _inflated(stream: bytes) -> bytes:
    """A Deflated Explicit VR data set, inflated; a cut-short stream is past the end (GDCM loops on it)."""
    import zlib

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        data = inflater.decompress(stream, 512 * 1024**2)
    except zlib.error as err:
        raise _PastTheEnd(f"the deflated data set is corrupt ({err})") from None
    if not inflater.eof and not inflater.unconsumed_tail:
        raise _PastTheEnd("the deflated data set ends before its deflate stream does")
    return data


def _after_fragments(data: bytes, pos: int) -> int:
    """The offset after an encapsulated Pixel Data's sequence delimiter (or the end of the file)."""
    while pos + 8 <= len(data):
        group, element, length = struct.unpack_from("<HHI", data, pos)
        pos += 8
        if (group, element) != (0xFFFE, 0xE000):
            return pos  # the delimiter, or garbage: carry on after it
        pos += length
    return len(data)


def _dataset_start(data: bytes) -> tuple[int | None, bool]:
    """Where the data set after the meta group starts, and whether it is explicit VR."""
    try:
        meta = read_file_meta(data)
    except NotPart10:
        return None, False
    syntax, pos = meta.transfer_syntax, meta.data_set_start
    if syntax == IMPLICIT_VR_LE:
        return pos, False
    if syntax == DEFLATED_EXPLICIT_VR_LE:
        return _DEFLATED + pos, True  # the offset of the deflate stream, marked
    if syntax.startswith(_EXPLICIT_LE):
        return pos, True
    return None, False


def _element_header(data: bytes, pos: int, explicit: bool) -> tuple[bytes | None, int, int]:
    """(VR or b"" for implicit, offset of the value, length) of the element at `pos`."""
    if not explicit:
        (length,) = struct.unpack_from("<I", data, pos + 4)
        return b"", pos + 8, length
    vr = data[pos + 4 : pos + 6]
    if vr in LONG_VRS:
        if pos + 12 > len(data):
            return None, pos, 0
        (length,) = struct.unpack_from("<I", data, pos + 8)
        return vr, pos + 12, length
    if not vr.isalpha():
        return None, pos, 0  # not an explicit VR element: lost, stop
    (length,) = struct.unpack_from("<H", data, pos + 6)
    return vr, pos + 8, length
