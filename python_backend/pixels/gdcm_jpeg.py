"""JPEG baseline (.50) and JPEG lossless SV1 (.70) encoding through python-gdcm.

pydicom 3 decodes both but has no encoder for either, so GDCM's JPEG codec (IJG libjpeg)
encodes the frames; pydicom still prepares the data set and writes the final file. GDCM reads and
writes files, so the frames go through a private temporary folder, and the encoding runs in a
child process: GDCM's C++ code aborts the interpreter on some inputs (an uncaught gdcm::Exception),
which must not take a `--stream` session down with it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.contract.dicom.pixels.decode import CODECS_HINT
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    import numpy as np
    from pydicom import Dataset

    from .syntaxes import Target

CHANGE_FAILED = 3  # exit code of the child when GDCM refuses the image
_TIMEOUT = 300


def check_encodable(ds: Dataset, target: Target) -> None:
    """PS3.5 8.2.1: baseline holds 8-bit unsigned samples, lossless up to 16 bits, 1 or 3 samples."""
    bits, stored = int(ds.BitsAllocated), int(ds.BitsStored)
    signed = int(ds.get("PixelRepresentation") or 0) == 1
    if target.lossy and (bits != 8 or signed):
        hint = "use j2k_lossy or jpegls_near for deeper data (or j2k / jpegls to stay lossless)"
        raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"JPEG baseline holds 8-bit unsigned samples; this image has Bits Allocated {bits}, Pixel Representation {int(signed)}", hint)
    if not target.lossy and (bits not in (8, 16) or stored > 16 or int(ds.SamplesPerPixel) not in (1, 3)):
        raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"JPEG lossless holds 1 or 3 samples of up to 16 bits; this image has Bits Allocated {bits}, Bits Stored {stored}", "use explicit, or deflated for smaller files")


def encode_with_gdcm(ds: Dataset, arr: np.ndarray, target: Target, quality: int) -> None:
    """Replace `ds`'s native Pixel Data with GDCM's JPEG encoding of `arr`, in place."""
    from pydicom import dcmread
    from pydicom.uid import UID, ExplicitVRLittleEndian

    check_encodable(ds, target)
    _require_gdcm()
    with tempfile.TemporaryDirectory(prefix="dicom-hub-gdcm-") as folder:
        src, dst = Path(folder) / "in.dcm", Path(folder) / "out.dcm"
        ds.PixelData = arr.tobytes()
        ds["PixelData"].VR = "OB" if ds.BitsAllocated <= 8 else "OW"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(src, enforce_file_format=True)
        argv = [sys.executable, "-m", __name__, str(src), str(dst), "lossy" if target.lossy else "lossless", str(quality)]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise HubError(ErrorCode.TIMEOUT, f"GDCM took more than {_TIMEOUT} s to encode {target.alias}", "try another target") from None
        if run.returncode == CHANGE_FAILED:
            raise HubError(
                ErrorCode.UNSUPPORTED_OPTION,
                f"GDCM cannot encode this image as {target.alias} (Bits Allocated {ds.BitsAllocated}, {ds.Rows}x{ds.Columns}, {ds.PhotometricInterpretation})",
                "try j2k, jpegls or rle",
            )
        if run.returncode != 0 or not dst.exists():
            raise HubError(ErrorCode.BACKEND_ERROR, f"GDCM failed to encode {target.alias} (exit {run.returncode}): {run.stderr.strip()[-500:]}", "try j2k, jpegls or rle", stderr=run.stderr, returncode=run.returncode)
        encoded = dcmread(dst)
    ds.PixelData = encoded.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = UID(target.uid)


def _require_gdcm() -> None:
    from importlib.util import find_spec

    if find_spec("gdcm") is None:
        raise HubError(ErrorCode.CODEC_UNAVAILABLE, "JPEG baseline and JPEG lossless are encoded with python-gdcm, which is not installed", f"{CODECS_HINT} (it provides python-gdcm)")


def _gdcm_encode(src: str, dst: str, lossy: bool, quality: int) -> int:
    """The child's work: read `src`, change its transfer syntax with GDCM's JPEG codec, write `dst`."""
    import gdcm

    reader = gdcm.ImageReader()
    reader.SetFileName(src)
    if not reader.Read():
        return 2
    change = gdcm.ImageChangeTransferSyntax()
    syntax = gdcm.TransferSyntax.JPEGBaselineProcess1 if lossy else gdcm.TransferSyntax.JPEGLosslessProcess14_1
    change.SetTransferSyntax(gdcm.TransferSyntax(syntax))
    codec = gdcm.JPEGCodec()
    codec.SetLossless(not lossy)
    if lossy:
        codec.SetQuality(quality)
    change.SetUserCodec(codec)
    change.SetInput(reader.GetImage())
    # GDCM still writes a file when Change() fails, with garbage pixel data: check it.
    if not change.Change():
        return CHANGE_FAILED
    writer = gdcm.ImageWriter()
    writer.SetFileName(dst)
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    return 0 if writer.Write() else 2


if __name__ == "__main__":
    sys.exit(_gdcm_encode(sys.argv[1], sys.argv[2], sys.argv[3] == "lossy", int(sys.argv[4])))
