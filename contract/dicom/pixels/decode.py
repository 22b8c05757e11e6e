"""Frame decoding shared by every pixel op of the Python backend and by the check of written pixels
(`adapters/verify.py`), with codec failures mapped to contract errors.

A missing codec is `codec_unavailable` naming the pip package that provides it; corrupt pixel
data is `decode_error`; asking for a frame the image does not have names the valid range.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.pixel_size import check_dataset, number_of_frames

if TYPE_CHECKING:
    import numpy as np
    from pydicom import Dataset
    from pydicom.uid import UID

T = TypeVar("T")
# What a codec raising on bad data can never be: the user (or the runtime) stopping us.
_NOT_CODEC_FAILURES = (KeyboardInterrupt, SystemExit, GeneratorExit)
CODECS_HINT = "pip install 'dicom-hub[codecs]'"

# Transfer syntax UID prefix -> the PyPI package(s) in the `codecs` extra that decode it.
_CODEC_PACKAGES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.70"), "pylibjpeg-libjpeg (or python-gdcm)"),
    (("1.2.840.10008.1.2.4.8",), "pyjpegls (or pylibjpeg-libjpeg, python-gdcm)"),
    (("1.2.840.10008.1.2.4.9", "1.2.840.10008.1.2.4.20"), "pylibjpeg-openjpeg"),
    (("1.2.840.10008.1.2.5",), "pylibjpeg-rle"),
)


def codec_package(uid: str) -> str:
    """The pip package that brings a codec for `uid` (for hints)."""
    for prefixes, package in _CODEC_PACKAGES:
        if uid.startswith(prefixes):
            return package
    return "a pydicom pixel data plugin"


def transfer_syntax(ds: Dataset) -> UID:
    """The data set's transfer syntax; raw data sets (no meta) get theirs from how they were read."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(uid if isinstance(uid, str) else str(uid))  # a corrupt file may hold several values
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian


def known_transfer_syntax(ds: Dataset, name: str) -> UID:
    """The data set's transfer syntax, refused as `decode_error` when it is not one pydicom knows:
    nothing says how its pixel data is encoded (and pydicom's UID properties raise on it)."""
    uid = transfer_syntax(ds)
    if not uid.is_transfer_syntax:
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"{name} declares transfer syntax {str(uid)[:80]!r}, which is not a transfer syntax DICOM defines, so its pixel data cannot be decoded",
            "the file is corrupt, or uses a private transfer syntax: convert it with the software that wrote it",
        )
    return uid


def is_codec_failure(err: BaseException) -> bool:
    """Whether `err`, raised while decoding, is the codec refusing the data.

    Python codecs raise anything from ValueError to RuntimeError; a Rust codec that panics
    (pylibjpeg-rle on a corrupt segment) surfaces as pyo3's PanicException, a BaseException that
    `except Exception` lets through and that would end the process without a response.
    """
    return not isinstance(err, _NOT_CODEC_FAILURES)


def require_pixels(ds: Dataset, name: str) -> None:
    if "PixelData" not in ds:
        kind = "float pixel data, which" if ("FloatPixelData" in ds or "DoubleFloatPixelData" in ds) else "no Pixel Data element, so it"
        raise HubError(ErrorCode.INVALID_REQUEST, f"{name} has {kind} cannot be processed by the pixel ops", "pass an image (a file with (7FE0,0010) Pixel Data)")


def frame_count(ds: Dataset) -> int:
    filename = getattr(ds, "filename", None)
    return number_of_frames(ds.get("NumberOfFrames"), Path(filename).name if isinstance(filename, str) else "the data set")


def check_frame(ds: Dataset, frame: int) -> int:
    """`frame` if the image has it, else an error naming the valid range."""
    count = frame_count(ds)
    if not 0 <= frame < count:
        valid = "0" if count == 1 else f"0..{count - 1}"
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"frame {frame} is out of range: the image has {count} frame(s), valid frames are {valid}",
            "frames are zero-based; `dicom-hub run --op info` shows the number of frames",
        )
    return frame


def check_decoder(uid: UID) -> None:
    """Fail early, with the package to install, when no installed plugin can decode `uid`."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise HubError(ErrorCode.CODEC_UNAVAILABLE, f"pydicom has no decoder for transfer syntax {uid} ({uid.name})", "convert the file with another toolkit first (e.g. gdcmconv -w)") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin installed"
        raise HubError(
            ErrorCode.CODEC_UNAVAILABLE,
            f"no installed codec can decode {uid.name} ({uid}): {missing}",
            f"{CODECS_HINT} (it provides {codec_package(uid)})",
        )


# Plugins in the order we try them. GDCM goes last: its C++ codecs can abort the whole process
# on inputs they dislike (an uncaught gdcm::Exception), which in a `--stream` session would end
# every later request too; the others raise Python exceptions. For ISO 10918 JPEG, Pillow
# (libjpeg-turbo, IJG-compatible) comes first: it decodes 8-bit images exactly as DCMTK's dcmdjpeg
# does, colour upsampling included; it refuses 12-bit and lossless, which fall through to pylibjpeg.
PLUGIN_ORDER = ("pylibjpeg", "pyjpegls", "pydicom", "pillow")
JPEG_PLUGIN_ORDER = ("pillow", "pylibjpeg")
_JPEG_10918 = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")


def plugin_order(available: tuple[str, ...] | list[str], uid: str = "") -> list[str]:
    """`available` plugin names, safest first: the known ones, then unknown ones, gdcm last."""
    order = JPEG_PLUGIN_ORDER if uid in _JPEG_10918 else PLUGIN_ORDER
    rank = {name: i for i, name in enumerate(order)} | {"gdcm": len(order) + 1}
    return sorted(available, key=lambda name: rank.get(name, len(order)))


def decode(ds: Dataset, name: str, *, index: int | None = None, as_rgb: bool = True) -> np.ndarray:
    """Decoded pixels: one frame (`index`) or all of them, colour converted to RGB unless `as_rgb` is false."""
    from pydicom.pixels import pixel_array

    require_pixels(ds, name)
    check_dataset(ds, name, frames_decoded=None if index is None else 1)
    uid = known_transfer_syntax(ds, name)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):  # a raw data set: pydicom's decoders need the syntax it was read in
        ds.ensure_file_meta()
        ds.file_meta.TransferSyntaxUID = uid
    if not uid.is_compressed:
        try:
            return pixel_array(ds, index=index, as_rgb=as_rgb)
        except BaseException as err:
            if not is_codec_failure(err):
                raise
            raise decode_failure(name, uid, err) from None
    from .gdcm_decode import PLUGIN as GDCM
    from .gdcm_decode import decode_in_child

    def attempt(plugin: str) -> np.ndarray:
        if plugin == GDCM:  # C++ that can abort the interpreter: in a child process
            return decode_in_child(ds, index=index, as_rgb=as_rgb)
        return pixel_array(ds, index=index, as_rgb=as_rgb, decoding_plugin=plugin)

    return with_decoders(uid, name, attempt)


def with_decoders(uid: UID, name: str, attempt: Callable[[str], T], *, in_process_only: bool = False) -> T:
    """Run `attempt(plugin)` with each installed decoder plugin for `uid` in turn until one works.

    `in_process_only` leaves out python-gdcm, for attempts that cannot run it in a child process
    (callers then fall back to `decode`, which can)."""
    from pydicom.pixels import get_decoder

    from .gdcm_decode import PLUGIN as GDCM

    check_decoder(uid)
    failures: list[str] = []
    for plugin in plugin_order(get_decoder(uid).available_plugins, uid):
        if in_process_only and plugin == GDCM:
            continue
        try:
            return attempt(plugin)
        except HubError:
            raise
        except BaseException as err:
            if not is_codec_failure(err):
                raise
            failures.append(f"{plugin}: {type(err).__name__}: {err}")
    raise HubError(
        ErrorCode.DECODE_ERROR,
        f"cannot decode the pixel data of {name} ({uid.name}); every installed decoder failed: " + "; ".join(failures),
        "the pixel data is corrupt, truncated or inconsistent with the Image Pixel module",
    )


def decode_failure(name: str, uid: UID, err: BaseException) -> HubError:
    return HubError(
        ErrorCode.DECODE_ERROR,
        f"cannot decode the pixel data of {name} ({uid.name}): {type(err).__name__}: {err}",
        "the pixel data is corrupt, truncated or inconsistent with the Image Pixel module",
    )
