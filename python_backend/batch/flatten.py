"""One table row per file: every element of a header, nested sequences flattened.

Column keys are readable and unique: `Keyword (gggg,eeee)` at the top level and
`SequenceKeyword[i].Keyword (gggg,eeee)` inside sequences (elements without a keyword: just
`(gggg,eeee)`). Values are strings, the same way in every row:
- text: the stored value without padding; several values (VM > 1) as a JSON list of strings;
- binary numbers (US, SL, FD, ...): the number, or a JSON list of numbers; AT: `(gggg,eeee)`;
- other binary (OB, OW, UN, ...): lowercase hex, left out when longer than `max_binary`;
- empty elements: "" (a column empty in every row is dropped from the table).
Pixel data, overlay/curve data (60xx,3000 / 50xx,3000) and waveform data are never included.

Speed: this runs for every file of an archive. Plain little-endian files go through
`fastheader` (bytes straight to a row); the rest are read by pydicom, whose *raw* elements (bytes
as stored) are decoded here with the same `raw_text`, so both paths give identical rows; only
sequences and text in a character set other than Latin-1 or UTF-8 take pydicom's full conversion.
"""

from __future__ import annotations

import json
import struct
from functools import cache
from pathlib import Path
from struct import unpack_from
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.pydicom_tables import dictionary_vr, keyword_for_tag, tag_for_keyword
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset

PATH_COLUMN = "path"
# Set (to the reason) when a file's header ends before its last element does: the row holds only
# what came before the cut, and the response lists the file under `warnings`.
INCOMPLETE_COLUMN = "incomplete"
EXCLUDED_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010, 0x54001010, 0x54000110})
_TEXT_VRS = frozenset(["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"])
_SINGLE_VALUE_VRS = frozenset({"LT", "ST", "UT", "UR"})
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_NUMBER_SIZES = {fmt: struct.calcsize("<" + fmt) for fmt in _NUMBER_FORMATS.values()}
# json.dumps(texts, ensure_ascii=False) without building an encoder for every value
_TEXT_LIST = json.JSONEncoder(ensure_ascii=False).encode
_FAST_CHARSETS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


def read_row(path: Path, max_binary: int = 256, include_file_meta: bool = True, fast: bool = True) -> dict[str, str]:
    """The flattened header of one file (pixel data is never read).

    Plain little-endian files take `fastheader` (bytes to row, no Dataset); every other file,
    and any file that reader declines, takes pydicom's reader. Both give the same row.
    """
    if fast:
        from .fastheader import read_fast

        row = {PATH_COLUMN: str(path)}
        if read_fast(path, row, max_binary, include_file_meta):
            return row
    ds = _read_header(path)
    return _flagged_if_cut(path, _flattened(path, ds, max_binary, include_file_meta))


def _flagged_if_cut(path: Path, row: dict[str, str]) -> dict[str, str]:
    """`row`, with INCOMPLETE_COLUMN set when the file's header was cut short (fastheader declines
    such files, so only pydicom's path can meet one)."""
    from dicom_hub.contract.structure import cut_short

    reason = cut_short(path)
    if reason is not None:
        row[INCOMPLETE_COLUMN] = reason
    return row


def _flattened(path: Path, ds: Dataset, max_binary: int, include_file_meta: bool) -> dict[str, str]:
    row = {PATH_COLUMN: str(path)}
    try:
        meta = getattr(ds, "file_meta", None)
        if include_file_meta and meta is not None:
            flatten(meta, row, max_binary=max_binary)
        flatten(ds, row, max_binary=max_binary)
    except HubError:
        raise
    except Exception as err:  # a truncated or corrupt element
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    return row


def _read_header(path: Path) -> Dataset:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        return dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        # No preamble: the shared reader accepts raw data sets and rejects everything else.
        from dicom_hub.contract.dicom.part10 import read_dataset

        return read_dataset(path, stop_before_pixels=True)
    except FileNotFoundError:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input not found: {path}", "the file vanished during the run") from None
    except PermissionError:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input is not readable: {path}", "check the file permissions") from None
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None


def flatten(ds: Dataset, row: dict[str, str], prefix: str = "", encoding: str | None = "latin_1", max_binary: int = 256, pixel_rep: int = 0) -> None:
    """Add every element of `ds` (recursively) to `row` under its column key."""
    from pydicom.dataelem import RawDataElement

    if 0x00080005 in ds:
        encoding = _python_encoding(ds.get("SpecificCharacterSet"))
    if 0x00280103 in ds:
        pixel_rep = _int_or(ds.get("PixelRepresentation"), pixel_rep)
    for elem in ds.elements():
        tag = int(elem.tag)
        if tag in EXCLUDED_TAGS or (tag >> 16) & 0xFF01 in (0x6000, 0x5000) and tag & 0xFFFF == 0x3000:
            continue
        label = column_label(tag)
        if isinstance(elem, RawDataElement):
            vr = raw_vr(elem.VR, tag, pixel_rep)
            if vr is not None and vr != "SQ" and (encoding is not None or vr not in _CHARSET_VRS):
                text = raw_text(elem.value, vr, elem.is_little_endian, encoding or "latin_1", max_binary)
                if text is not None:
                    row[prefix + label] = text
                continue
            elem = ds[tag]  # pydicom's full conversion: sequences, other character sets
        if elem.VR == "SQ":
            name = label.split(" ")[0] if " " in label else label
            for index, item in enumerate(elem.value or ()):
                flatten(item, row, f"{prefix}{name}[{index}].", encoding, max_binary, pixel_rep)
            if not elem.value:
                row[prefix + label] = ""
            continue
        text = converted_text(elem, max_binary)
        if text is not None:
            row[prefix + label] = text


@cache
def column_label(tag: int) -> str:
    """`Keyword (gggg,eeee)`, or `(gggg,eeee)` for tags without a keyword (private ones)."""
    keyword = keyword_for_tag(tag)
    code = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    return f"{keyword} {code}" if keyword else code


def sort_key(column: str) -> tuple[tuple[int, int], ...]:
    """Columns in tag order along the nested path (the path column first, then the incomplete flag)."""
    if column == PATH_COLUMN:
        return ((-1, -1),)
    if column == INCOMPLETE_COLUMN:
        return ((-1, 0),)
    parts = []
    for segment in column.split("]."):
        name, _, index = segment.partition("[")
        parts.append((_segment_tag(name), int(index) if index else -1))
    return tuple(parts)


@cache
def _segment_tag(name: str) -> int:
    if "(" in name:
        code = name[name.index("(") + 1 : name.index(")")]
        group, element = code.split(",")
        return int(group, 16) << 16 | int(element, 16)
    return tag_for_keyword(name) or 0xFFFFFFFF


def raw_vr(stored: str | None, tag: int, pixel_rep: int) -> str | None:
    """The VR to decode a raw element with; None when pydicom must convert it (private data)."""
    if stored is not None and stored != "UN":
        return stored
    if tag >> 16 & 1:
        # Private: creators are LO; pydicom's private dictionary knows the rest.
        return "LO" if 0x0010 <= tag & 0xFFFF <= 0x00FF else (None if stored is None else "UN")
    return implicit_vr(tag, pixel_rep)  # implicit VR, or explicit UN for a known tag (as pydicom does)


@cache
def implicit_vr(tag: int, pixel_rep: int = 0) -> str:
    """The VR of an implicit-VR element from the dictionary ('UN' when unknown)."""
    vr = dictionary_vr(tag)
    if vr is None:
        return "UN"
    if vr == "US or SS":
        return "SS" if pixel_rep == 1 else "US"
    if " or " in vr:
        return vr.split(" or ")[-1] if vr.startswith("OB") else vr.split(" or ")[0]
    return vr


def raw_text(value: bytes | None, vr: str, little_endian: bool, encoding: str, max_binary: int) -> str | None:
    """The stored bytes of one element as the table's string (None: leave it out)."""
    if not value:
        return ""
    if vr in _TEXT_VRS:
        text = value.decode(encoding, errors="replace")
        if vr in _SINGLE_VALUE_VRS:
            return text.rstrip(" \x00")
        if "\\" not in text:
            return text.strip(" \x00")
        return _TEXT_LIST([part.strip(" \x00") for part in text.split("\\")])
    fmt = _NUMBER_FORMATS.get(vr)
    if fmt is not None:
        size = _NUMBER_SIZES[fmt]
        order = "<" if little_endian else ">"
        if len(value) == size:
            return str(unpack_from(order + fmt, value)[0])
        count = len(value) // size
        return _numbers_text(struct.unpack(order + fmt * count, value[: count * size]))
    if vr == "AT":
        count = len(value) // 4
        words = struct.unpack(("<" if little_endian else ">") + "H" * (2 * count), value[: 4 * count])
        tags = [f"({words[i]:04X},{words[i + 1]:04X})" for i in range(0, len(words), 2)]
        return tags[0] if len(tags) == 1 else json.dumps(tags)
    if len(value) > max_binary:
        return None
    return value.hex()


def converted_text(elem: Any, max_binary: int) -> str | None:
    """The same strings as `raw_text`, from an element pydicom has already converted."""
    value = elem.value
    if elem.is_empty:
        return ""
    if isinstance(value, bytes | bytearray):
        return None if len(value) > max_binary else bytes(value).hex()
    if elem.VR == "AT":
        tags = [f"({int(t) >> 16:04X},{int(t) & 0xFFFF:04X})" for t in (value if elem.VM > 1 else [value])]
        return tags[0] if len(tags) == 1 else json.dumps(tags)
    if elem.VR in _NUMBER_FORMATS:
        return _numbers_text(list(value) if elem.VM > 1 else [value])
    items = list(value) if elem.VM > 1 else [value]
    texts = [_stored_string(v).strip(" \x00") for v in items]
    return texts[0] if len(texts) == 1 else json.dumps(texts, ensure_ascii=False)


def _stored_string(value: Any) -> str:
    """DS/IS keep the string as stored ("0.500", not 0.5); PN and the rest their str()."""
    original = getattr(value, "original_string", None)
    return original if isinstance(original, str) else str(value)


def _numbers_text(numbers: Any) -> str:
    numbers = list(numbers)
    return str(numbers[0]) if len(numbers) == 1 else json.dumps(numbers)


def _python_encoding(value: Any) -> str | None:
    """A codec for the fast path, or None when pydicom must decode (ISO 2022, other sets)."""
    if value is None:
        return "latin_1"
    terms = [value] if isinstance(value, str) else list(value)
    if len(terms) != 1:
        return None
    return _FAST_CHARSETS.get(str(terms[0]).strip())


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
