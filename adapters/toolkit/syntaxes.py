"""Transfer syntaxes as the subprocess adapters see them: the codec family of each UID (which
decides the tool chain), the rules every backend shares, and reading back what a tool wrote."""

from __future__ import annotations

from pathlib import Path

from dicom_hub.contract import transfer_syntaxes as table
from dicom_hub.contract.errors import ErrorCode, HubError

# UIDs by the contract's aliases (`contract/transfer_syntaxes.py` is the one table).
EXPLICIT_LE = table.uid("explicit")
IMPLICIT_LE = table.uid("implicit")
DEFLATED_LE = table.uid("deflated")
EXPLICIT_BE = table.uid("big_endian")
RLE = table.uid("rle")
JPEG_BASELINE = table.uid("jpeg")
JPEG_LOSSLESS = table.uid("jpeg_lossless_p14")
JPEG_LOSSLESS_SV1 = table.uid("jpeg_lossless")
JPEGLS_LOSSLESS = table.uid("jpegls")
JPEGLS_NEAR = table.uid("jpegls_near")
J2K_LOSSLESS = table.uid("j2k")
J2K_LOSSY = table.uid("j2k_lossy")
HTJ2K = table.uid("htj2k")

# Native (uncompressed) encodings: any toolkit rewrites these without a codec.
NATIVE = table.NATIVE_UIDS
# Codec families (decides which DCMTK decompressor applies).
JPEG_FAMILY = frozenset(ts.uid for ts in table.TABLE if ts.codec == "jpeg")
JPEGLS_FAMILY = frozenset(ts.uid for ts in table.TABLE if ts.codec == "jpegls")
J2K_FAMILY = frozenset(ts.uid for ts in table.TABLE if ts.codec == "j2k")
LOSSY = table.LOSSY_UIDS


def writable(name: str) -> str:
    """A transcode target (alias or UID) -> UID, by the contract's one resolver: unknown names and
    read-only syntaxes (big endian) are the same `invalid_request` on every backend."""
    return table.resolve_written(name).uid


resolve = writable  # the name some adapters use


def lossy_method(uid: str) -> str | None:
    """The Lossy Image Compression Method (0028,2114) that output in `uid` records (None: lossless)."""
    ts = table.BY_UID.get(uid)
    return ts.method if ts else None


def check_baseline_input(path: Path) -> None:
    """JPEG baseline holds 8-bit unsigned samples: refuse deeper or signed data instead of letting a
    tool narrow it silently (dcmcjpeg) or write another syntax (gdcmconv writes extended)."""
    from pydicom import dcmread

    ds = dcmread(path, stop_before_pixels=True, specific_tags=["BitsAllocated", "PixelRepresentation"])
    bits, signed = ds.get("BitsAllocated"), ds.get("PixelRepresentation", 0)
    if bits != 8 or signed:
        raise HubError(
            ErrorCode.UNSUPPORTED_OPTION,
            f"JPEG baseline holds 8-bit unsigned samples; this image has Bits Allocated {bits}, Pixel Representation {signed}",
            "use j2k_lossy or jpegls_near for deeper data (or j2k / jpegls to stay lossless)",
        )


def is_dicm(path: Path) -> bool:
    """Whether the file carries the Part 10 preamble marker."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_failure_code(path: Path) -> ErrorCode:
    """What a toolkit's refusal to read `path` means: not DICOM at all, or a damaged DICOM file."""
    if not path.exists():
        return ErrorCode.INPUT_NOT_FOUND
    return ErrorCode.DECODE_ERROR if is_dicm(path) else ErrorCode.NOT_DICOM


def file_transfer_syntax(path: Path) -> str | None:
    """The Transfer Syntax UID in a file's meta header (None when it has no meta header)."""
    from pydicom.filereader import read_file_meta_info

    try:
        meta = read_file_meta_info(path)
    except Exception:
        return None
    ts = meta.get("TransferSyntaxUID")
    return str(ts) if ts else None


def check_written(path: Path, expected_uid: str) -> None:
    """Read the written file back and make sure it is in the transfer syntax that was asked for."""
    written = file_transfer_syntax(path)
    if written != expected_uid:
        raise HubError(
            ErrorCode.BACKEND_ERROR,
            f"the tool wrote transfer syntax {written or 'none'} instead of {expected_uid}",
            "this input cannot be encoded that way by this backend; try another backend",
        )


def uid_name(uid: str | None) -> str | None:
    """pydicom's name for a UID (the same names every backend's `info` reports)."""
    if not uid:
        return None
    from pydicom.uid import UID

    return UID(uid).name
