"""Transfer syntaxes as the subprocess adapters see them: the codec family of each UID (which
decides the tool chain), the rules every backend shares, and reading back what a tool wrote."""

from __future__ import annotations

from pathlib import Path

from dicom_hub.contract.errors import ErrorCode, HubError

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEGLS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEGLS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"

# Native (uncompressed) encodings: any toolkit rewrites these without a codec.
NATIVE = frozenset({EXPLICIT_LE, IMPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})
# Codec families (decides which DCMTK decompressor applies).
JPEG_FAMILY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1})
JPEGLS_FAMILY = frozenset({JPEGLS_LOSSLESS, JPEGLS_NEAR})
J2K_FAMILY = frozenset({J2K_LOSSLESS, J2K, HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K})
LOSSY = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEGLS_NEAR, J2K})


ALIASES: dict[str, str] = {
    "explicit": EXPLICIT_LE,
    "implicit": IMPLICIT_LE,
    "deflated": DEFLATED_LE,
    "rle": RLE,
    "jpeg": JPEG_BASELINE,
    "jpeg_lossless": JPEG_LOSSLESS_SV1,
    "jpegls": JPEGLS_LOSSLESS,
    "jpegls_near": JPEGLS_NEAR,
    "j2k": J2K_LOSSLESS,
    "j2k_lossy": J2K,
    "htj2k": HTJ2K,
    "htj2k_lossless": HTJ2K_LOSSLESS,
}


def resolve(name: str) -> str:
    """Alias or any UID -> UID; anything else is `invalid_request` (kept permissive for the
    adapters that use it; `writable` applies the contract's list of targets)."""
    uid = ALIASES.get(name.lower(), name)
    if not uid.replace(".", "").isdigit() or uid.startswith(".") or ".." in uid:
        raise HubError(ErrorCode.INVALID_REQUEST, f"unknown transfer syntax {name!r}", f"use one of {', '.join(ALIASES)} or a transfer syntax UID")
    return uid


def writable(name: str) -> str:
    """A transcode target -> UID, by the same table as the Python backend (`python_backend.pixels.syntaxes`):
    unknown names and write-refused syntaxes (big endian) are `invalid_request` for every backend using it."""
    from dicom_hub.python_backend.pixels.syntaxes import resolve_target

    return resolve_target(name).uid


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
