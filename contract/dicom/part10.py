"""Reading and writing DICOM files with the contract's error codes and file rules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output

if TYPE_CHECKING:
    from pydicom import Dataset


def read_dataset(
    path: Path,
    *,
    stop_before_pixels: bool = False,
    force: bool = False,
    defer_size: int | None = None,
    parse_all: bool = True,
) -> Dataset:
    """Read a DICOM file; unreadable or non-DICOM input becomes `not_dicom` / `decode_error`.

    Files without the Part 10 preamble are accepted only when they parse as DICOM (`force`
    stays off unless asked), so a text file named .dcm is `not_dicom`, not an empty dataset.
    `defer_size` leaves values larger than that many bytes on disk (read on access): the fast
    way to read headers while still noticing a truncated file. `parse_all=False` skips converting
    every element up front (ops that read a few elements convert only those).
    """
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    ds: Dataset
    try:
        ds = dcmread(path, stop_before_pixels=stop_before_pixels, force=force, defer_size=defer_size)
    except InvalidDicomError:
        ds = _read_without_preamble(path, stop_before_pixels)
    except FileNotFoundError:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input not found: {path}", "check the path") from None
    except IsADirectoryError:
        raise HubError(ErrorCode.INVALID_REQUEST, f"input is a directory: {path}", "pass a file") from None
    except PermissionError:
        raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input is not readable: {path}", "check the file permissions") from None
    except Exception as err:  # pydicom raises many types on corrupt data
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None
    _check_not_lost(ds, path, stop_before_pixels)
    _check_parsed(ds, path, parse_all)
    return ds


def _read_without_preamble(path: Path, stop_before_pixels: bool) -> Dataset:
    """Raw datasets (no preamble, no meta) are legal DICOM; anything else is `not_dicom`."""
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception:
        ds = None
    if ds is None or len(ds) == 0 or not _looks_like_dicom(ds):
        raise HubError(ErrorCode.NOT_DICOM, f"not a DICOM file: {path}", "the file has no DICM marker and does not parse as a DICOM data set")
    return ds


def _looks_like_dicom(ds: Dataset) -> bool:
    """A forced parse of random bytes gives nonsense tags; real data sets start in low groups with
    known tags. Group 0000 (DIMSE command elements) never starts a stored data set: zero bytes
    parse as an endless run of (0000,0000), which is no data set at all."""
    from pydicom.datadict import dictionary_has_tag

    try:
        tags = list(ds.keys())[:8]
        return bool(tags) and 0x0002 <= tags[0].group <= 0x0010 and sum(dictionary_has_tag(t) for t in tags) >= max(1, len(tags) // 2)
    except Exception:
        return False


def _check_not_lost(ds: Dataset, path: Path, stop_before_pixels: bool) -> None:
    """An empty data set from a file that holds more than its meta is a read cut short.

    pydicom 3.0 turns an end of file inside an undefined-length value (encapsulated Pixel Data
    whose fragments or sequence delimiter are missing) into a warning and drops every element it
    had read, so the file would look like an empty, valid data set.
    """
    if len(ds) or path.stat().st_size <= _data_set_offset(ds):
        return
    where = "its data set"
    if not stop_before_pixels:
        from pydicom import dcmread

        try:
            if len(dcmread(path, stop_before_pixels=True, force=True)):
                where = "its Pixel Data (fragments or the sequence delimiter are missing)"
        except Exception:
            pass
    raise HubError(ErrorCode.DECODE_ERROR, f"{path.name} is truncated: the file ends inside {where}", "the file is incomplete; copy or export it again")


def _data_set_offset(ds: Dataset) -> int:
    """Where the data set starts: after the preamble and the file meta group (0 for raw data sets)."""
    meta = getattr(ds, "file_meta", None)
    group_length = meta.get("FileMetaInformationGroupLength") if meta is not None else None
    if ds.preamble is None or not isinstance(group_length, int):  # absent, or corrupt (a list, bytes...)
        return 0
    return 128 + 4 + 12 + group_length


def _check_parsed(ds: Dataset, path: Path, parse_all: bool) -> None:
    """Force a full parse now, so truncation surfaces as `decode_error` here and not later.

    pydicom reads a value cut short by the end of the file without complaint, so the last
    element's declared length is compared with what the file holds.
    """
    truncated = _truncated_element(ds, path)
    if truncated:
        raise HubError(ErrorCode.DECODE_ERROR, f"{path.name} is truncated: {truncated}", "the file is incomplete; copy or export it again")
    if not parse_all:
        return
    try:
        _convert_all(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            _convert_all(meta)  # a corrupt meta element (unknown VR) fails here, not in an op
    except Exception as err:
        raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {path.name}: {type(err).__name__}: {err}", "the file is corrupt or truncated") from None


def _convert_all(ds: Dataset) -> None:
    """Convert every raw element (nested items included), leaving deferred values on disk."""
    from pydicom.dataelem import RawDataElement

    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if isinstance(raw, RawDataElement) and raw.value is None and raw.length:
            continue  # deferred: read only if an op asks for it
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value:
                _convert_all(item)


def _truncated_element(ds: Dataset, path: Path) -> str | None:
    from pydicom.dataelem import RawDataElement

    if not len(ds):
        return None
    last = ds.get_item(list(ds.keys())[-1], keep_deferred=True)
    if not isinstance(last, RawDataElement) or last.length == 0xFFFFFFFF:
        return None
    if last.value is not None:
        available = len(last.value)
    elif _is_deflated(ds):
        return None  # offsets point into the inflated stream, not the file: nothing to compare
    else:
        available = path.stat().st_size - last.value_tell
    if available < last.length:
        return f"element {last.tag} declares {last.length} bytes but only {max(available, 0)} remain"
    return None


def _is_deflated(ds: Dataset) -> bool:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    return meta is not None and meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian


def write_dataset(ds: Dataset, path: Path, *, overwrite: bool = False, enforce_file_format: bool = True) -> Path:
    """Write `ds` as a Part 10 file, atomically (temp file + rename)."""
    with atomic_output(path, overwrite) as tmp:
        try:
            ds.save_as(tmp, enforce_file_format=enforce_file_format)
        except HubError:
            raise
        except Exception as err:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot write {path.name}: {type(err).__name__}: {err}", "check the data set and the output folder") from None
    return path
