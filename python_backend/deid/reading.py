"""Reading a file for de-identification: header parsed, values left raw, pixels never decoded.

`contract.dicom.part10.read_dataset` converts every element to check the parse; here only the elements the
profile changes get converted (by the engine), and the rest are written back byte for byte.
Errors map to the same contract codes as `read_dataset`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset


def read_for_anonymize(path: Path) -> Dataset:
    """The data set of `path` with raw (unconverted) elements; `not_dicom` / `decode_error` else."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(path)
    except InvalidDicomError:
        return read_dataset(path)  # raw data set without preamble, or `not_dicom`
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return read_dataset(path)  # the same errors, with the same codes and hints
    except Exception as err:  # pydicom raises many types on corrupt data
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"cannot parse {path.name}: {type(err).__name__}: {err}",
            "the file is corrupt or truncated",
        ) from None
    if len(ds) == 0:
        raise HubError(ErrorCode.NOT_DICOM, f"no data set in {path}", "the file holds only a header")
    try:
        _check_complete(ds, path)
    except HubError:
        raise
    except Exception as err:  # an element pydicom cannot even hold raw (an unknown VR)
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    return ds


def _check_complete(ds: Dataset, path: Path) -> None:
    """pydicom returns a short value for a truncated last element; a de-identified copy must not."""
    from pydicom.dataelem import DataElement, RawDataElement

    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts its elements; keys() does not
        elem: DataElement | RawDataElement = ds.get_item(tag)  # pydicom's annotation omits the raw element
        if isinstance(elem, RawDataElement) and elem.length != 0xFFFFFFFF and len(elem.value or b"") != elem.length:
            raise HubError(
                ErrorCode.DECODE_ERROR,
                f"cannot parse {path.name}: element {tag} is truncated ({len(elem.value or b'')} of {elem.length} bytes)",
                "the file is corrupt or truncated",
            )


BYTES_ENGINE_MAX = 1 << 28  # larger files go to pydicom's reader
_buffer = bytearray()  # one per process, reused file after file (a fresh 0.5 MB buffer costs page faults)


def read_file_bytes(path: Path) -> memoryview:
    """The bytes of `path` for `bytes_engine`, valid until the next call; empty (which the bytes
    engine declines) for anything but a regular file of reasonable size (a FIFO would block,
    /dev/zero never end) or one that cannot be read: `read_for_anonymize` then reports the error
    with its usual code and hint."""
    global _buffer
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return memoryview(b"")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > BYTES_ENGINE_MAX:
            return memoryview(b"")
        if len(_buffer) < info.st_size + 1:
            _buffer = bytearray(info.st_size + 1 + (info.st_size >> 3))
        view = memoryview(_buffer)
        size = 0
        while True:
            rest = view[size:]
            got = os.readv(fd, [rest])
            if not got:
                break
            size += got
            if size == len(view):
                return memoryview(b"")  # the file grew while read: pydicom's reader takes it
            if size == info.st_size and got < len(rest):  # a short read at the size seen: the end
                break
        return view[:size]
    except OSError:
        return memoryview(b"")
    finally:
        os.close(fd)
