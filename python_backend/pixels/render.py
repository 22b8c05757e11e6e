"""Turning decoded pixels into display values: Modality LUT -> VOI (window or VOI LUT) -> output
bit depth, MONOCHROME1 inversion, colour to RGB. The LUT steps are pydicom's own
(`apply_modality_lut`, `apply_voi`, `apply_windowing`, `apply_color_lut`); this module only
decides which window applies and maps the result onto 8 or 16 bits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.rescale import check_rescale, first_number
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    import numpy as np
    from pydicom import Dataset

COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420", "PALETTE COLOR")


@dataclass(frozen=True)
class Window:
    """The VOI step that was applied, and where its values came from (manual, file, auto)."""

    source: str
    center: float | None = None
    width: float | None = None
    function: str | None = None
    method: str = "window"  # window | voi_lut | percentile | minmax
    explanation: str | None = None  # a VOI LUT's LUT Explanation

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RenderOptions:
    modality: bool = True
    voi: bool = True
    center: float | None = None
    width: float | None = None
    normalize: bool = False
    bits: int = 8


# Functional groups of enhanced multi-frame IODs that carry a frame's LUT parameters, and the
# top-level attributes pydicom's LUT functions read them from.
FRAME_LUT_GROUPS = (
    ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept", "RescaleType")),
    ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
)


def for_frame(ds: Dataset, frame: int) -> Dataset:
    """`ds` as frame `frame` of an enhanced multi-frame image sees it: its Pixel Value Transformation
    and Frame VOI LUT (per-frame functional group, else shared) as top-level Rescale and Window
    attributes, where pydicom's LUT functions look. Unchanged when there are none; a new data set
    (sharing the elements) otherwise, so the caller's `ds` is never modified."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    if frame < len(per_frame):
        groups.append(per_frame[frame])
    groups += list(ds.get("SharedFunctionalGroupsSequence") or [])[:1]
    found: dict[str, Any] = {}
    for group in groups:
        for sequence, keywords in FRAME_LUT_GROUPS:
            items = group.get(sequence) or []
            for keyword in keywords:
                if items and keyword in items[0] and keyword not in found and keyword not in ds:
                    found[keyword] = items[0][keyword].value
    if not found:
        return ds
    from pydicom.dataset import Dataset as PydicomDataset

    view = PydicomDataset()
    view.update(ds)
    for keyword, value in found.items():
        setattr(view, keyword, value)
    return view


def has_modality_lut(ds: Dataset) -> bool:
    """Whether `modality_values` changes anything: the very condition under which pydicom's
    apply_modality_lut acts (a Modality LUT item, else a Rescale Slope and Intercept with values),
    so metadata saying a modality LUT was applied is true by construction."""
    if ds.get("ModalityLUTSequence"):
        return True
    return all(ds.get(keyword) not in (None, "") for keyword in ("RescaleSlope", "RescaleIntercept"))


def modality_values(arr: np.ndarray, ds: Dataset, enabled: bool = True) -> np.ndarray:
    """Stored values -> modality values (e.g. HU); unchanged when disabled or absent.

    A Rescale Slope or Intercept of NaN or Infinity, or one so large the values overflow, gives
    no numbers to measure or show: `decode_error` naming the attribute, never NaN in an answer.
    """
    if not enabled or not has_modality_lut(ds):
        return arr
    import numpy as np
    from pydicom.pixels import apply_modality_lut

    check_rescale(ds)
    with np.errstate(over="ignore", invalid="ignore"):
        values = apply_modality_lut(arr, ds)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"Rescale Slope {ds.get('RescaleSlope')} and Intercept {ds.get('RescaleIntercept')} take the stored values beyond the range of numbers",
            "the file's (0028,1053) Rescale Slope is not a usable value; set modality: false to use stored values",
        )
    return values


def render_grey(arr: np.ndarray, ds: Dataset, opts: RenderOptions) -> tuple[np.ndarray, Window]:
    """One greyscale frame -> uint8/uint16 display values, and the window used.

    Integer frames go through a lookup table: the LUT steps run once per possible stored value
    (as DCMTK does) and the frame is indexed with it, instead of running them per pixel.
    """
    domain = _lut_domain(arr)
    values = modality_values(arr if domain is None else domain, ds, opts.modality)
    if opts.center is not None and opts.width is not None:
        window = Window("manual", float(opts.center), float(opts.width), "LINEAR")
    elif opts.normalize:
        window = auto_window(modality_values(arr, ds, opts.modality))
    elif opts.voi and ds.get("VOILUTSequence"):
        out, window = _file_voi_lut(values, ds, 2**opts.bits - 1)
        return _finish(out, ds, opts.bits, arr, domain), window
    elif opts.voi and has_file_window(ds):
        window = file_window(ds)
    elif not opts.voi:
        window = minmax_window(modality_values(arr, ds, opts.modality))
    else:
        window = auto_window(modality_values(arr, ds, opts.modality))
    return _finish(apply_window(values, window, opts.bits), ds, opts.bits, arr, domain), window


def _lut_domain(arr: np.ndarray) -> np.ndarray | None:
    """Every integer from the frame's min to its max, when that is a small enough table."""
    import numpy as np

    if not np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
        return None
    low, high = int(arr.min()), int(arr.max())
    if high - low > 2**17 or high - low > arr.size:
        return None
    return np.arange(low, high + 1, dtype=np.int64 if arr.dtype.itemsize >= 4 else np.int32)


def has_file_window(ds: Dataset) -> bool:
    return all(ds.get(keyword) not in (None, "") for keyword in ("WindowCenter", "WindowWidth"))


def file_window(ds: Dataset) -> Window:
    """The file's first Window Center/Width with its VOI LUT Function."""
    center, width = first_number(ds.WindowCenter), first_number(ds.WindowWidth)
    function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
    if width is None or center is None or not width > 0 or not abs(center) < float("inf") or not width < float("inf"):
        raise HubError(
            ErrorCode.DECODE_ERROR,
            f"the file's window is unusable: Window Center {center}, Window Width {width} (the width must be > 0)",
            "give window_center and window_width, or set normalize: true",
        )
    return Window("file", center, width, function)


def auto_window(values: np.ndarray) -> Window:
    """Centre at the median; width = the 5th-95th percentile range widened by 20% (at least 1)."""
    import numpy as np

    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return Window("auto", float(median), max(float(p95 - p5) * 1.2, 1.0), "LINEAR", "percentile")


def minmax_window(values: np.ndarray) -> Window:
    low, high = float(values.min()), float(values.max())
    return Window("auto", (low + high) / 2, max(high - low, 1.0), "LINEAR_EXACT", "minmax")


def apply_window(values: np.ndarray, window: Window, bits: int) -> np.ndarray:
    """pydicom's windowing onto [0, 2**bits - 1], through a tiny data set holding only the window."""
    from pydicom import Dataset
    from pydicom.pixels import apply_windowing

    function = window.function or "LINEAR"
    if function == "LINEAR" and window.width is not None and window.width < 1:
        function = "LINEAR_EXACT"  # LINEAR is defined for widths >= 1 only (PS3.3 C.11.2.1.2.1)
    voi = Dataset()
    voi.PhotometricInterpretation = "MONOCHROME2"
    voi.PixelRepresentation = 0
    voi.BitsStored = bits
    voi.WindowCenter = window.center
    voi.WindowWidth = window.width
    voi.VOILUTFunction = function
    try:
        return apply_windowing(values, voi)
    except ValueError as err:
        raise HubError(ErrorCode.INVALID_REQUEST, f"cannot apply the window: {err}", "use a window width > 0 and VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID") from None


def _file_voi_lut(values: np.ndarray, ds: Dataset, top: int) -> tuple[np.ndarray, Window]:
    """The file's first VOI LUT Sequence item, rescaled from its entry depth to the output depth."""
    import numpy as np
    from pydicom.pixels import apply_voi

    item = ds.VOILUTSequence[0]
    depth = int(item.LUTDescriptor[2])
    if not np.issubdtype(values.dtype, np.integer):
        values = np.rint(values).astype(np.int64)
    out = apply_voi(values, ds, 0).astype(np.float64) * (top / (2**depth - 1))
    return out, Window("file", method="voi_lut", explanation=str(item.get("LUTExplanation") or "") or None)


def _finish(out: np.ndarray, ds: Dataset, bits: int, arr: np.ndarray, domain: np.ndarray | None) -> np.ndarray:
    """Round onto the output type (MONOCHROME1 shows low values bright, so invert it); look the
    frame up in the result when `out` was computed over the LUT domain."""
    import numpy as np

    top = 2**bits - 1
    result = np.clip(np.rint(out), 0, top).astype(np.uint8 if bits == 8 else np.uint16)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":
        result = top - result
    if domain is None:
        return result
    return result[arr.astype(np.intp) - int(domain[0])]


def render_colour(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """A decoded colour frame (already RGB, or palette indices) -> 8-bit RGB."""
    import numpy as np

    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        arr = apply_color_lut(arr, ds)
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
    else:
        depth = int(ds.get("BitsStored") or 8)
    if depth == 8 and arr.dtype == np.uint8:
        return arr
    scaled = arr.astype(np.float64) * (255 / (2**depth - 1))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
