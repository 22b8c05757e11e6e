"""Writing the de-identified data set: raw (unchanged) elements copied as their original bytes.

pydicom's writer already copies a raw element's bytes, but spends most of a file's write time in
per-element machinery; the benchmark against gdcmanon needs better. So, when the file keeps its
own transfer syntax (little endian, not deflated) and character set, elements the engine left raw
are framed here (tag, VR, length: PS3.5 7.1) and everything else — the file meta, converted
elements and undefined-length Pixel Data — goes through pydicom's own functions; sequences are
written with undefined lengths (item and sequence delimiters), which every reader accepts. In any
other case the whole file is written by `Dataset.save_as`.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.encoding import LONG_VRS
from dicom_hub.contract.dicom.part10 import write_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output

if TYPE_CHECKING:
    from pydicom import Dataset

_LONG_VRS = frozenset(vr.decode() for vr in LONG_VRS)  # pydicom's VRs are str
_UNDEFINED_LENGTH = 0xFFFFFFFF
_TAG = struct.Struct("<HH")
_IMPLICIT_LENGTH = struct.Struct("<L")
_SHORT_LENGTH = struct.Struct("<H")
_LONG_LENGTH = struct.Struct("<2xL")
# Text VRs whose ASCII values are written as they are (UI padded with NUL, the others with space).
_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UT"})
_ITEM = _TAG.pack(0xFFFE, 0xE000) + _IMPLICIT_LENGTH.pack(_UNDEFINED_LENGTH)
_ITEM_END = _TAG.pack(0xFFFE, 0xE00D) + _IMPLICIT_LENGTH.pack(0)
_SEQUENCE_END = _TAG.pack(0xFFFE, 0xE0DD) + _IMPLICIT_LENGTH.pack(0)


def save(ds: Dataset, path: Path, overwrite: bool = False) -> None:
    """Write `ds` to `path` atomically, by the fast path when it applies."""
    data = encode(ds)
    if data is None:
        write_dataset(ds, path, overwrite=overwrite)
        return
    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(data)


def encode(ds: Dataset) -> bytes | None:
    """The Part 10 bytes of `ds`, or None when the fast path does not apply."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import UID

    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    if not syntax.is_transfer_syntax or syntax.is_deflated or not syntax.is_little_endian:
        return None
    implicit = syntax.is_implicit_VR
    if ds.original_encoding != (implicit, True) or ds.original_character_set != ds._character_set:
        return None
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    fp.write(b"\0" * 128 + b"DICM")
    try:
        fp.write(_file_meta(ds.file_meta))
        _write_dataset(fp, ds, implicit, ds.get("SpecificCharacterSet", "iso8859"))
    except Exception as err:
        raise HubError(
            ErrorCode.OUTPUT_ERROR,
            f"cannot encode the de-identified data set: {type(err).__name__}: {err}",
            "check the input file's header",
        ) from None
    return fp.getvalue()


def _write_dataset(fp: Any, ds: Dataset, implicit: bool, charset: Any) -> None:
    """Raw elements framed here; sequences item by item (undefined lengths); the rest by pydicom."""
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.filewriter import write_data_element

    write = fp.write
    charset = ds.get("SpecificCharacterSet", charset)
    for tag in sorted(ds.keys()):
        elem: DataElement | RawDataElement = ds.get_item(tag)  # pydicom's annotation omits the raw element
        if isinstance(elem, RawDataElement):
            if elem.length == _UNDEFINED_LENGTH or not (implicit or elem.VR):
                write_data_element(fp, ds[tag], charset)  # converted: settles an ambiguous VR
                continue
            _frame(write, tag, elem.VR, elem.value or b"", implicit)
        elif elem.VR == "SQ":
            write(_TAG.pack(tag >> 16, tag & 0xFFFF))
            write(
                _IMPLICIT_LENGTH.pack(_UNDEFINED_LENGTH)
                if implicit
                else b"SQ" + _LONG_LENGTH.pack(_UNDEFINED_LENGTH)
            )
            for item in elem.value:
                write(_ITEM)
                _write_dataset(fp, item, implicit, charset)
                write(_ITEM_END)
            write(_SEQUENCE_END)
        else:
            value = _ascii_text(elem)
            if value is None:
                write_data_element(fp, elem, charset)
            else:
                _frame(write, tag, elem.VR, value, implicit)


def _frame(write: Any, tag: int, vr: str | None, value: bytes, implicit: bool) -> None:
    """Tag, (VR,) length and value of one element (PS3.5 7.1.1-7.1.3)."""
    write(_TAG.pack(tag >> 16, tag & 0xFFFF))
    if implicit:
        write(_IMPLICIT_LENGTH.pack(len(value)))
    else:
        assert vr is not None, "explicit VR: the caller converts an element that has none"
        write(vr.encode())
        write((_LONG_LENGTH if vr in _LONG_VRS else _SHORT_LENGTH).pack(len(value)))
    write(value)


def _ascii_text(elem: Any) -> bytes | None:
    """The encoded value of a text element the engine set (UIDs, dummies, dates, pseudonyms).

    Only plain ASCII strings of the text VRs, where every character set encodes alike; anything
    else (numbers, person names with groups, non-ASCII text) returns None and goes to pydicom.
    """
    from pydicom.uid import UID

    if elem.VR not in _ASCII_VRS:
        return None
    value = elem.value
    if value is None:
        return b""
    values = [value] if isinstance(value, str) else list(value)
    if not all(type(v) in (str, UID) for v in values):
        return None
    text = "\\".join(values)
    if not text.isascii():
        return None
    data = text.encode("ascii")
    return data + (b"\0" if elem.VR == "UI" else b" ") if len(data) % 2 else data


def _file_meta(meta: Any) -> bytes:
    """Group 0002 (Explicit VR Little Endian, PS3.10 7.1) for the three UIDs the engine sets."""
    from pydicom import __version__
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    return file_meta_bytes(meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID, PYDICOM_IMPLEMENTATION_UID, __version__)


def file_meta_bytes(sop_class: str, sop_instance: str, syntax: str, implementation: str, version: str) -> bytes:
    """The group 0002 bytes of `_file_meta`, from plain strings (also for `bytes_engine`)."""
    before, after = _meta_around(sop_class, syntax, implementation, version)
    body = before + _meta_element(0x0003, "UI", _uid_bytes(sop_instance)) + after
    return _meta_element(0x0000, "UL", struct.pack("<L", len(body))) + body


@lru_cache(maxsize=64)  # the file meta of a batch's files differ by their SOP Instance UID only
def _meta_around(sop_class: str, syntax: str, implementation: str, version: str) -> tuple[bytes, bytes]:
    """The file meta elements before and after the Media Storage SOP Instance UID."""
    before = _meta_element(0x0001, "OB", b"\0\1") + _meta_element(0x0002, "UI", _uid_bytes(sop_class))
    after = b"".join(
        [
            _meta_element(0x0010, "UI", _uid_bytes(syntax)),
            _meta_element(0x0012, "UI", _uid_bytes(implementation)),
            _meta_element(0x0013, "SH", _even(f"PYDICOM {version}"[:16].encode(), b" ")),
        ]
    )
    return before, after


def _meta_element(element: int, vr: str, value: bytes) -> bytes:
    length = (_LONG_LENGTH if vr in _LONG_VRS else _SHORT_LENGTH).pack(len(value))
    return _TAG.pack(0x0002, element) + vr.encode() + length + value


def _uid_bytes(uid: str) -> bytes:
    if not uid:
        raise ValueError("a file meta UID is missing (SOP Class or SOP Instance UID)")
    return _even(str(uid).encode("ascii"), b"\0")


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value
