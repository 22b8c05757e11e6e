"""A DICOM series as a stack of planes: read the headers, pick one series, check and sort the geometry.

Slices are ordered by their position projected on the slice normal (row cosines x column
cosines), never by instance number or z. Everything that would make a wrong volume is refused
with a message naming the files: missing or duplicate positions, mixed orientation, pixel
spacing or matrix size, slices not stacked along the normal, uneven spacing (unless allowed).
Enhanced multi-frame files give one plane per frame from their functional groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    import numpy as np
    from pydicom import Dataset

ORIENTATION_TOLERANCE = 1e-4  # direction cosines
SPACING_TOLERANCE = 1e-4  # relative, pixel spacing
UNEVEN_TOLERANCE = 0.01  # relative to the mean slice step
DUPLICATE_TOLERANCE_MM = 0.01
HEADER_DEFER_BYTES = 2048  # pixel data stays on disk until the chosen series is assembled


@dataclass
class Plane:
    """One 2-D image of the series: a single-frame file, or one frame of a multi-frame file."""

    path: Path
    frame: int | None
    dataset: Dataset = field(repr=False)
    position: np.ndarray
    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    columns: int
    slope: float
    intercept: float
    sop_instance_uid: str
    distance: float = 0.0

    @property
    def name(self) -> str:
        return self.path.name if self.frame is None else f"{self.path.name}[frame {self.frame}]"


@dataclass
class Stack:
    """The sorted planes of one series and its geometry (LPS, millimetres)."""

    planes: list[Plane]
    row_cosines: np.ndarray
    column_cosines: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_step: np.ndarray  # world vector from one slice to the next
    series_uid: str
    warnings: list[str]

    @property
    def slice_spacing(self) -> float:
        import numpy as np

        return float(np.linalg.norm(self.slice_step))

    def affine(self) -> np.ndarray:
        """4x4 LPS affine of the index order (slice, row, column)."""
        import numpy as np

        affine = np.eye(4)
        affine[:3, 0] = self.slice_step
        affine[:3, 1] = self.column_cosines * self.pixel_spacing[0]
        affine[:3, 2] = self.row_cosines * self.pixel_spacing[1]
        affine[:3, 3] = self.planes[0].position
        return affine


def load_stack(paths: list[Path], series_uid: str | None = None, allow_uneven: bool = False) -> Stack:
    """The checked, sorted stack of the one series in `paths` (or the one named by `series_uid`)."""
    by_series, skipped = _read_planes(paths)
    planes, uid = _choose_series(by_series, series_uid)
    stack = _build_stack(planes, uid, allow_uneven)
    stack.warnings[:0] = skipped
    return stack


def _read_planes(paths: list[Path]) -> tuple[dict[str, list[Plane]], list[str]]:
    by_series: dict[str, list[Plane]] = {}
    skipped = []
    for path in paths:
        ds = read_dataset(path, defer_size=HEADER_DEFER_BYTES, parse_all=False)
        if "PixelData" not in ds:
            skipped.append(f"{path.name}: no pixel data, left out")
            continue
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).extend(_planes_of(ds, path))
    if not by_series:
        raise HubError(ErrorCode.INVALID_REQUEST, "no image with pixel data in the input", "give the folder (or files) of one image series")
    return by_series, skipped


def _choose_series(by_series: dict[str, list[Plane]], wanted: str | None) -> tuple[list[Plane], str]:
    if wanted is not None:
        if wanted not in by_series:
            raise HubError(ErrorCode.INVALID_REQUEST, f"series {wanted} is not in the input; present: {_describe(by_series)}", "set options.series_uid to one of them")
        return by_series[wanted], wanted
    if len(by_series) > 1:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"the input holds {len(by_series)} series: {_describe(by_series)}",
            "choose one with options.series_uid",
        )
    uid, planes = next(iter(by_series.items()))
    return planes, uid


def _describe(by_series: dict[str, list[Plane]]) -> str:
    parts = []
    for uid, planes in sorted(by_series.items()):
        ds = planes[0].dataset
        label = " ".join(str(v) for v in (ds.get("SeriesNumber"), ds.get("Modality"), ds.get("SeriesDescription")) if v not in (None, ""))
        parts.append(f"{uid or '(no Series Instance UID)'} ({label + ', ' if label else ''}{len(planes)} image(s))")
    return "; ".join(parts)


def _planes_of(ds: Dataset, path: Path) -> list[Plane]:
    """One plane per frame; enhanced multi-frame geometry comes from the functional groups."""
    frames = int(ds.get("NumberOfFrames") or 1)
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{path.name} is a colour image", "volumes are built from greyscale series")
    if "PerFrameFunctionalGroupsSequence" in ds:
        return [_plane(ds, path, frame, _FunctionalGroups(ds, frame)) for frame in range(frames)]
    if frames > 1:
        return _stacked_frames(ds, path, frames)
    return [_plane(ds, path, None, ds)]


class _FunctionalGroups:
    """Attribute lookup in a frame's per-frame groups, then the shared groups, then the top level."""

    def __init__(self, ds: Dataset, frame: int) -> None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        self._groups = [ds.PerFrameFunctionalGroupsSequence[frame], *(shared[:1] if shared else [])]
        self._ds = ds

    def get(self, keyword: str, default: Any = None) -> Any:
        for groups in self._groups:
            for macro in groups:
                if macro.VR == "SQ" and macro.value and keyword in macro.value[0]:
                    return macro.value[0][keyword].value
        return self._ds.get(keyword, default)


def _stacked_frames(ds: Dataset, path: Path, frames: int) -> list[Plane]:
    """Legacy multi-frame (e.g. RT Dose, NM): frames offset along the normal by Grid Frame Offset Vector."""
    import numpy as np

    offsets = ds.get("GridFrameOffsetVector")
    if offsets is None or len(offsets) != frames:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{path.name} has {frames} frames but no per-frame positions", "volumes need a position for every frame")
    base = _plane(ds, path, None, ds)
    planes = []
    for frame, offset in enumerate(offsets):
        plane = _plane(ds, path, frame, ds)
        plane.position = base.position + float(offset) * np.cross(base.orientation[:3], base.orientation[3:])
        planes.append(plane)
    return planes


def _plane(ds: Dataset, path: Path, frame: int | None, source: Any) -> Plane:
    import numpy as np

    where = path.name if frame is None else f"{path.name} frame {frame}"
    position = source.get("ImagePositionPatient")
    orientation = source.get("ImageOrientationPatient")
    spacing = source.get("PixelSpacing")
    for keyword, value in (("ImagePositionPatient", position), ("ImageOrientationPatient", orientation), ("PixelSpacing", spacing)):
        if value is None or len(value) != (3 if keyword == "ImagePositionPatient" else 6 if keyword == "ImageOrientationPatient" else 2):
            raise HubError(ErrorCode.INVALID_REQUEST, f"{where} has no usable {keyword}", "every image of a volume needs its position, orientation and pixel spacing")
    slope = source.get("RescaleSlope")
    intercept = source.get("RescaleIntercept")
    return Plane(
        path=path,
        frame=frame,
        dataset=ds,
        position=np.array([float(v) for v in position]),
        orientation=np.array([float(v) for v in orientation]),
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        slope=1.0 if slope in (None, "") else float(slope),
        intercept=0.0 if intercept in (None, "") else float(intercept),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
    )


def _build_stack(planes: list[Plane], series_uid: str, allow_uneven: bool) -> Stack:
    import numpy as np

    first = planes[0]
    for plane in planes[1:]:
        _check_same(first, plane)
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    for plane in planes:
        plane.distance = float(plane.position @ normal)
    planes.sort(key=lambda p: p.distance)
    warnings: list[str] = []
    _check_duplicates(planes)
    _check_stacked(planes, normal)
    if len(planes) == 1:
        thickness = first.dataset.get("SpacingBetweenSlices") or first.dataset.get("SliceThickness") or 1.0
        step = normal * float(thickness)
    else:
        step = (planes[-1].position - planes[0].position) / (len(planes) - 1)
        warnings += _check_even(planes, allow_uneven)
    return Stack(planes, row, col, normal, first.pixel_spacing, step, series_uid, warnings)


def _check_same(first: Plane, plane: Plane) -> None:
    import numpy as np

    if (plane.rows, plane.columns) != (first.rows, first.columns):
        raise _inconsistent("matrix size", first, plane, f"{first.rows}x{first.columns}", f"{plane.rows}x{plane.columns}")
    if not np.allclose(plane.orientation, first.orientation, atol=ORIENTATION_TOLERANCE):
        raise _inconsistent("orientation", first, plane, _fmt(first.orientation), _fmt(plane.orientation))
    if not np.allclose(plane.pixel_spacing, first.pixel_spacing, rtol=SPACING_TOLERANCE, atol=0):
        raise _inconsistent("pixel spacing", first, plane, _fmt(first.pixel_spacing), _fmt(plane.pixel_spacing))


def _inconsistent(what: str, first: Plane, plane: Plane, a: str, b: str) -> HubError:
    return HubError(
        ErrorCode.INVALID_REQUEST,
        f"inconsistent {what} in the series: {first.name} has {a}, {plane.name} has {b}",
        "a volume needs one geometry; split the series or pick another with options.series_uid",
    )


def _fmt(values: Any) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def _check_duplicates(planes: list[Plane]) -> None:
    for a, b in zip(planes, planes[1:], strict=False):
        if b.distance - a.distance < DUPLICATE_TOLERANCE_MM:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"duplicate slice position {_fmt(a.position)}: {a.name} and {b.name}",
                "remove the duplicate image (or pick one series with options.series_uid)",
            )


def _check_stacked(planes: list[Plane], normal: np.ndarray) -> None:
    """Every slice must sit on the line through the first one along the normal (no tilt or shear)."""
    import numpy as np

    origin = planes[0].position
    for plane in planes[1:]:
        offset = plane.position - origin
        off_axis = float(np.linalg.norm(offset - (offset @ normal) * normal))
        if off_axis > max(0.01, 1e-3 * float(np.linalg.norm(offset))):
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"{plane.name} is {off_axis:.3f} mm off the slice normal through {planes[0].name} (gantry tilt or sheared stack)",
                "such series need resampling, which this op does not do",
            )


def _check_even(planes: list[Plane], allow_uneven: bool) -> list[str]:
    import numpy as np

    gaps = np.diff([p.distance for p in planes])
    mean = float(np.mean(gaps))
    worst = int(np.argmax(np.abs(gaps - mean)))
    if abs(gaps[worst] - mean) <= UNEVEN_TOLERANCE * mean:
        return []
    message = (
        f"uneven slice spacing: {gaps[worst]:.4g} mm between {planes[worst].name} and {planes[worst + 1].name}, "
        f"{mean:.4g} mm on average (missing slice?)"
    )
    if not allow_uneven:
        raise HubError(ErrorCode.INVALID_REQUEST, message, "set options.allow_uneven to build the volume with the mean spacing anyway")
    return [message + "; the volume uses the mean spacing"]
