"""`to_image`: one frame as a windowed PNG, JPEG, BMP or TIFF, written with Pillow."""

from __future__ import annotations

from pathlib import Path

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.dicom.pixels.decode import check_frame, decode, frame_count
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .render import COLOUR, RenderOptions, Window, for_frame, has_modality_lut, render_colour, render_grey

PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "tiff": "TIFF"}
EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".bmp": "bmp", ".tif": "tiff", ".tiff": "tiff"}
SIXTEEN_BIT_FORMATS = ("png", "tiff")


def output_format(job: Job) -> str:
    """The `format` option, else the output's extension, else PNG."""
    assert job.output is not None
    return job.options.get("format") or EXTENSIONS.get(job.output.suffix.lower(), "png")


def render_options(job: Job, fmt: str) -> RenderOptions:
    """Check the option combinations the schema cannot express, and gather the render settings."""
    center, width = job.options.get("window_center"), job.options.get("window_width")  # both or neither, width > 0, one depth: the schema
    if center is not None and job.option("normalize"):
        raise HubError(ErrorCode.INVALID_REQUEST, "normalize and a manual window exclude each other", "drop normalize, or drop window_center/window_width")
    if "quality" in job.options and fmt != "jpeg":
        raise HubError(ErrorCode.INVALID_REQUEST, f"quality applies to JPEG output only, not {fmt.upper()}", "drop quality, or set format jpeg (or a .jpg output)")
    bits = 16 if job.option("force_16bit") else 8
    if bits == 16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{fmt.upper()} cannot hold 16-bit greyscale", "use format png or tiff with force_16bit")
    return RenderOptions(
        modality=not job.option("disable_modality_lut"),
        voi=not job.option("disable_voi_lut"),
        center=center,
        width=width,
        normalize=bool(job.option("normalize")),
        bits=bits,
    )


def to_image(job: Job) -> Outcome:
    from PIL import Image

    assert job.output is not None
    fmt = output_format(job)
    opts = render_options(job, fmt)
    ds = read_dataset(job.input)
    name = job.input.name
    frame = check_frame(ds, job.option("frame"))
    arr = decode(ds, name, index=frame)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    window: Window | None = None
    if photometric in COLOUR or arr.ndim == 3:
        if opts.bits == 16:
            raise HubError(ErrorCode.INVALID_REQUEST, f"force_16bit is for greyscale images; this one is {photometric}", "drop force_16bit for colour images")
        pixels = render_colour(arr, ds)
    else:
        ds = for_frame(ds, frame)  # an enhanced image's per-frame rescale and window
        pixels, window = render_grey(arr, ds, opts)
    image = Image.fromarray(pixels)
    save_args = {"quality": job.option("quality")} if fmt == "jpeg" else {}
    with atomic_output(job.output, job.overwrite) as tmp:
        try:
            image.save(tmp, format=PILLOW_FORMATS[fmt], **save_args)
        except (OSError, ValueError) as err:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot write {fmt.upper()} {job.output.name}: {err}", "check the output folder and format") from None
    modality = window is not None and opts.modality and has_modality_lut(ds)
    return Outcome(metadata=_metadata(job.output, fmt, frame, frame_count(ds), photometric, image, window, modality), output_files=[str(job.output)])


def _metadata(path: Path, fmt: str, frame: int, frames: int, photometric: str, image, window: Window | None, modality: bool) -> dict:
    return {
        "output": str(path),
        "format": fmt,
        "frame": frame,
        "frames": frames,
        "photometric_interpretation": photometric,
        "width": image.width,
        "height": image.height,
        "mode": image.mode,
        "bit_depth": 16 if image.mode.startswith("I") else 8,
        "samples_per_pixel": len(image.getbands()),
        "modality_lut": modality,
        "window": window.as_dict() if window else None,
        "window_source": window.source if window else "none",
    }
