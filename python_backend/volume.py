"""`volume`: a series folder (or files) as a 3-D NumPy array plus a JSON sidecar with its affine.

The array is indexed [slice, row, column]; the sidecar's 4x4 affine maps (slice, row, column, 1)
to patient coordinates in millimetres (DICOM LPS). Rescale Slope/Intercept are applied, and the
data type is the smallest that holds the rescaled values exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.pixels.decode import is_codec_failure
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output, check_writable
from dicom_hub.contract.job import Job, Outcome

from .series_geometry import Stack, load_stack

if TYPE_CHECKING:
    import numpy as np

# Integer types tried in order for integral rescaled values; anything else is float32.
_INTEGER_TYPES = ("uint8", "int16", "uint16", "int32")


@dataclass
class Volume:
    data: np.ndarray  # [slice, row, column], rescaled
    stack: Stack
    rescaled: bool


def volume(job: Job) -> Outcome:
    if job.output_path.suffix != ".npy":
        raise HubError(ErrorCode.INVALID_REQUEST, f"output {job.output_path.name} is not a .npy file", "name the output <name>.npy; the sidecar becomes <name>.json")
    sidecar = sidecar_path(job.output_path)
    check_writable(sidecar, job.overwrite)
    built = build_volume(job)
    description = describe(built)
    import numpy as np

    with atomic_output(job.output_path, job.overwrite) as tmp, tmp.open("wb") as fh:
        np.save(fh, built.data)
    write_json(sidecar, description, job.overwrite)
    return Outcome(metadata=description, output_files=[str(job.output), str(sidecar)])


def build_volume(job: Job) -> Volume:
    """The checked stack of the requested series, assembled and rescaled."""
    stack = load_stack(series_files(job.inputs), job.option("series_uid"), bool(job.option("allow_uneven")))
    data, rescaled = assemble(stack)
    return Volume(data, stack, rescaled)


def series_files(inputs: tuple[Path, ...]) -> list[Path]:
    """A folder's DICOM files (by name and magic bytes, recursively), or the files given."""
    from .batch.discovery import find_dicom_files

    files = find_dicom_files(list(inputs), recursive=True, include_raw=True)
    if not files:
        raise HubError(ErrorCode.INVALID_REQUEST, f"no DICOM files in {', '.join(str(p) for p in inputs)}", "give the folder of one image series")
    return files


def assemble(stack: Stack) -> tuple[np.ndarray, bool]:
    """Decode every plane (pydicom's pixel machinery) into one array, rescaled when the files say so."""
    import numpy as np

    planes = stack.planes
    rescaled = any(p.slope != 1.0 or p.intercept != 0.0 for p in planes)
    integral = all(float(p.slope).is_integer() and float(p.intercept).is_integer() for p in planes)
    cache: dict[Path, np.ndarray] = {}
    stored = [_pixels(plane, cache) for plane in planes]
    # The rescale is linear, so each slice's stored min/max give its rescaled range without a copy.
    ends = [(float(a.min()) * p.slope + p.intercept, float(a.max()) * p.slope + p.intercept) for a, p in zip(stored, planes, strict=True)]
    low, high = min(min(e) for e in ends), max(max(e) for e in ends)
    dtype = _smallest_type(low, high, integral)
    data = np.empty((len(planes), planes[0].rows, planes[0].columns), dtype=dtype)
    # Integral rescales stay in integers (int64 is exact for every stored value), the rest in float64.
    work = np.int64 if integral else np.float64
    for index, (pixels, plane) in enumerate(zip(stored, planes, strict=True)):
        if plane.slope == 1.0 and plane.intercept == 0.0:
            data[index] = pixels
        else:
            data[index] = pixels.astype(work) * work(plane.slope) + work(plane.intercept)
    return data, rescaled


def _pixels(plane: Any, cache: dict[Path, np.ndarray]) -> np.ndarray:
    try:
        if plane.frame is None:
            return plane.dataset.pixel_array
        if plane.path not in cache:
            cache[plane.path] = plane.dataset.pixel_array
        return cache[plane.path][plane.frame]
    except BaseException as err:  # a Rust codec's panic is a BaseException (see is_codec_failure)
        if not is_codec_failure(err):
            raise
        code = ErrorCode.CODEC_UNAVAILABLE if "plugin" in str(err).lower() or "decoder" in str(err).lower() else ErrorCode.DECODE_ERROR
        raise HubError(code, f"cannot decode the pixels of {plane.name}: {type(err).__name__}: {err}", "install the codec extras: pip install 'dicom-hub[codecs]'") from None


def _smallest_type(low: float, high: float, integral: bool) -> str:
    import numpy as np

    if not integral:
        return "float32"
    for name in _INTEGER_TYPES:
        info = np.iinfo(name)
        if info.min <= low and high <= info.max:
            return name
    return "float64"


def describe(built: Volume) -> dict[str, Any]:
    """The sidecar: geometry, rescale and source UIDs (also the op's metadata)."""
    stack = built.stack
    first = stack.planes[0].dataset
    slopes = sorted({p.slope for p in stack.planes})
    intercepts = sorted({p.intercept for p in stack.planes})
    return {
        "shape": list(built.data.shape),
        "index_order": ["slice", "row", "column"],
        "dtype": str(built.data.dtype),
        "coordinate_system": "LPS",
        "affine": stack.affine().round(6).tolist(),
        "spacing": [round(stack.slice_spacing, 6), *stack.pixel_spacing],
        "orientation": {
            "row_cosines": stack.row_cosines.tolist(),
            "column_cosines": stack.column_cosines.tolist(),
            "slice_normal": stack.normal.round(9).tolist(),
        },
        "origin": stack.planes[0].position.tolist(),
        "slice_count": len(stack.planes),
        "rescale": {"applied": built.rescaled, "slopes": slopes, "intercepts": intercepts, "units": str(first.get("RescaleType", "")) or None},
        "study_instance_uid": str(first.get("StudyInstanceUID", "")) or None,
        "series_instance_uid": stack.series_uid or None,
        "frame_of_reference_uid": str(first.get("FrameOfReferenceUID", "")) or None,
        "sop_instance_uids": [p.sop_instance_uid for p in stack.planes],
        "source_frames": [p.frame for p in stack.planes] if any(p.frame is not None for p in stack.planes) else None,
        "warnings": stack.warnings,
    }


def sidecar_path(output: Path) -> Path:
    """vol.npy -> vol.json, brain.nii.gz -> brain.json."""
    name = output.name
    for suffix in (".nii.gz", ".nii", ".npy"):
        if name.endswith(suffix):
            return output.with_name(name[: -len(suffix)] + ".json")
    return output.with_name(name + ".json")


def write_json(path: Path, document: dict[str, Any], overwrite: bool) -> None:
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(json.dumps(document, indent=2, allow_nan=False), encoding="utf-8")
