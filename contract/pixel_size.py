"""How many bytes an image's header says its pixels need, checked BEFORE any decoder allocates.

A 4 KB file may claim 65535 x 65535 x 1000 frames: decoders believe the header and allocate (or
abort the process with std::bad_alloc). Every backend that decodes pixels asks this one module
first: the python backend with the data set it already read (`check_dataset`), toolkit adapters
with the file, whose header pydicom reads without loading the pixel data (`check_file`).

Two rules, both `decode_error` naming the numbers:
- the pixel data present must back the claim: native data holds at least Rows x Columns x
  Frames x Samples x Bits Allocated / 8 bytes; compressed data can expand at most
  `MAX_COMPRESSION_RATIO` times (claims under `SMALL_CLAIM_BYTES` are never refused by it);
- what one request decodes stays under a ceiling: `DICOM_HUB_MAX_PIXEL_BYTES` (bytes,
  default 4 GiB).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from pydicom import Dataset

LIMIT_ENV = "DICOM_HUB_MAX_PIXEL_BYTES"
DEFAULT_MAX_PIXEL_BYTES = 4 * 1024**3
# Lossless and lossy codecs on real images stay far below this (pydicom's test files peak near
# 2000, a blank JPEG 2000 frame); a header that needs more is lying about its size.
MAX_COMPRESSION_RATIO = 10_000
SMALL_CLAIM_BYTES = 64 * 1024**2  # below this a wrong claim costs nothing worth refusing
_FIX_HINT = "the header (Rows, Columns, Number of Frames, Samples per Pixel, Bits Allocated) does not match the pixel data; the file is corrupt or truncated"
_ENCAPSULATED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True)
class PixelClaim:
    """What the Image Pixel module says, and how many bytes of Pixel Data the file holds."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    stored_bytes: int
    encapsulated: bool
    subsampled: bool = False  # native 4:2:2 data stores two samples per pixel, not three (`is_subsampled`)

    @property
    def _frame_bits(self) -> int:
        samples = 2 if self.subsampled and not self.encapsulated else self.samples
        return self.rows * self.columns * samples * self.bits_allocated

    @property
    def frame_bytes(self) -> int:
        return (self._frame_bits + 7) // 8

    @property
    def total_bytes(self) -> int:
        return (self._frame_bits * self.frames + 7) // 8  # 1-bit frames are packed end to end

    def describe(self) -> str:
        return f"{self.rows} x {self.columns} x {self.frames} frame(s) x {self.samples} sample(s) x {self.bits_allocated} bits = {self.total_bytes} bytes"


def is_subsampled(photometric: object) -> bool:
    """Native YBR_FULL_422 / YBR_PARTIAL_422 data holds one Y per pixel and one Cb/Cr pair per two."""
    return str(photometric or "").strip().endswith("_422")


def stored_bytes(length: int, value_offset: int | None, file_size: int, deflated: bool) -> int:
    """Bytes of Pixel Data a file really holds: its declared length, cut at the end of the file.
    In a deflated file offsets point into the inflated stream, so the declared length is all we know."""
    if deflated or value_offset is None:
        return length
    return max(min(length, file_size - value_offset), 0)


def native_shortfall(claim: PixelClaim, name: str) -> str | None:
    """Why native Pixel Data cannot back its claim (it holds fewer bytes than the image attributes
    call for), or None. Every backend refuses this as `decode_error`: a decoder that zero-fills the
    gap would answer ok with made-up pixels."""
    if claim.encapsulated or claim.stored_bytes >= claim.total_bytes:
        return None
    return f"{name}: the header claims {claim.describe()} but Pixel Data holds only {claim.stored_bytes} bytes"


def max_pixel_bytes() -> int:
    """The ceiling on decoded pixel bytes per request: `DICOM_HUB_MAX_PIXEL_BYTES` or 4 GiB."""
    given = os.environ.get(LIMIT_ENV, "").strip()
    if not given:
        return DEFAULT_MAX_PIXEL_BYTES
    try:
        value = int(given)
    except ValueError:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{LIMIT_ENV}={given!r} is not a whole number of bytes", f"set {LIMIT_ENV} to e.g. {DEFAULT_MAX_PIXEL_BYTES}") from None
    if value <= 0:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{LIMIT_ENV} must be positive, got {value}", f"set {LIMIT_ENV} to e.g. {DEFAULT_MAX_PIXEL_BYTES}")
    return value


def check_claim(claim: PixelClaim, name: str, *, frames_decoded: int | None = None) -> None:
    """Refuse a claim the data cannot back, or a decode larger than the ceiling."""
    total = claim.total_bytes
    shortfall = native_shortfall(claim, name)
    if shortfall is not None:
        raise HubError(ErrorCode.DECODE_ERROR, shortfall, _FIX_HINT)
    if claim.encapsulated and total > SMALL_CLAIM_BYTES and total > claim.stored_bytes * MAX_COMPRESSION_RATIO:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"{name}: the header claims {claim.describe()} from {claim.stored_bytes} bytes of compressed data, "
            f"a compression ratio above {MAX_COMPRESSION_RATIO}",
            _FIX_HINT,
        )
    decoded = claim.frame_bytes * (claim.frames if frames_decoded is None else frames_decoded)
    limit = max_pixel_bytes()
    if decoded > limit:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"{name}: decoding {claim.describe() if frames_decoded is None else f'{frames_decoded} frame(s) of {claim.frame_bytes} bytes'} "
            f"needs {decoded} bytes, above the limit of {limit} bytes",
            f"raise the limit with the environment variable {LIMIT_ENV} (bytes) if the image is genuine and the memory is there",
        )


def number_of_frames(value: object, name: str) -> int:
    """(0028,0008) Number of Frames as a count (absent or 0: one frame); a value that is not a
    whole number is `decode_error`, the same on every backend."""
    try:
        return max(_whole(value) or 1, 1)
    except (TypeError, ValueError, OverflowError):
        raise HubError(ErrorCode.DECODE_ERROR, f"{name}: invalid Number of Frames {value!r}", "fix (0028,0008) Number of Frames") from None


def claim_of(ds: Dataset, stored_bytes: int, encapsulated: bool) -> PixelClaim | None:
    """The claim of a data set's Image Pixel module; None when it has no usable size to check
    (a missing or unreadable value is left for the decoder to refuse)."""
    try:  # a value pydicom cannot convert (unknown VR, bad number...) is left for the decoder to refuse
        values = [_whole(ds.get(keyword)) for keyword in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated")]
        subsampled = is_subsampled(ds.get("PhotometricInterpretation", ""))
    except Exception:
        return None
    rows, columns, frames, samples, bits = values
    if rows is None or columns is None or bits is None:
        return None
    return PixelClaim(rows, columns, max(frames or 1, 1), max(samples or 1, 1), bits, stored_bytes, encapsulated, subsampled)


def _whole(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple):  # a multi-valued US: the decoder will refuse it
        value = value[0] if value else None
        if value is None:
            return None
    number = int(float(str(value).strip())) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    return max(number, 0)


def check_dataset(ds: Dataset, name: str, *, frames_decoded: int | None = None) -> None:
    """The python backend's check, on a data set read with its Pixel Data in memory."""
    if "PixelData" not in ds:
        return
    pixels = ds["PixelData"]
    if not isinstance(pixels.value, bytes | bytearray):
        return
    claim = claim_of(ds, len(pixels.value), _is_encapsulated(ds, pixels.is_undefined_length))
    if claim is not None:
        check_claim(claim, name, frames_decoded=frames_decoded)


def check_file(path: Path) -> None:
    """A toolkit adapter's check before it starts a tool that decodes `path`'s pixels.

    pydicom reads the header and leaves the Pixel Data on disk (its length and offset are
    enough). A file pydicom cannot read is left to the tool, which reports it its own way.
    """
    from pydicom import dcmread

    try:
        size = path.stat().st_size
        ds = dcmread(path, defer_size=1024, force=True)
        raw = ds.get_item(0x7FE00010, keep_deferred=True)
    except Exception:
        return
    if raw is None:
        return
    length: int | None = getattr(raw, "length", None)  # a RawDataElement (deferred) has one; a DataElement does not
    tell: int | None = getattr(raw, "value_tell", None)
    undefined = length == _ENCAPSULATED_LENGTH if length is not None else bool(getattr(raw, "is_undefined_length", False))
    value = getattr(raw, "value", None)
    if isinstance(value, bytes | bytearray):
        stored = len(value)
    elif length is not None and (tell is not None or _is_deflated(ds)):
        stored = stored_bytes(length, tell, size, _is_deflated(ds))
    else:
        return
    claim = claim_of(ds, stored, _is_encapsulated(ds, undefined))
    if claim is not None:
        check_claim(claim, path.name)


def _is_deflated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    return meta is not None and str(meta.get("TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99"


def _is_encapsulated(ds: Dataset, undefined_length: bool) -> bool:
    """Compressed Pixel Data: undefined length, or a transfer syntax that compresses."""
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    native = uid in ("", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2")
    return undefined_length or not native
