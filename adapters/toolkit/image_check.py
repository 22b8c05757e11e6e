"""The `to_image` output rules every subprocess adapter shares: which format was asked for,
and whether the file a tool wrote really is that image (tools may write something else
with exit code 0, e.g. gdcmimg writes DICOM for a .png name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

_BY_SUFFIX = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tiff": "TIFF"}


def image_format(job: Job) -> str:
    """options.format, else from the output's extension, else png."""
    given = job.option("format")
    if given:
        return str(given)
    suffix = job.output.suffix.lower() if job.output else ""
    return _BY_SUFFIX.get(suffix, "png")


def check_image(path: Path, fmt: str, *, sixteen_bit: bool = False) -> dict[str, Any]:
    """Open the written image; raise `backend_error` unless it is a `fmt` image (16-bit if asked)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            found, size, mode = img.format, img.size, img.mode
    except Exception as err:
        raise HubError(ErrorCode.BACKEND_ERROR, f"the tool did not write a readable image: {err}", "see stderr") from None
    if found != _PIL_FORMATS[fmt]:
        raise HubError(ErrorCode.BACKEND_ERROR, f"the tool wrote {found}, not {fmt}", "see stderr")
    if sixteen_bit and mode not in ("I;16", "I;16B", "I", "I;16S"):
        raise HubError(ErrorCode.BACKEND_ERROR, f"the tool wrote a {mode} image, not 16-bit greyscale", "see stderr")
    return {"format": fmt, "width": size[0], "height": size[1], "mode": mode}
