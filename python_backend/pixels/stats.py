"""`stats` and `histogram`: numbers over stored values or modality values (e.g. HU), one frame or all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.dicom.pixels.decode import check_frame, decode, frame_count
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from .render import for_frame, has_modality_lut, modality_values

if TYPE_CHECKING:
    import numpy as np

PERCENTILES = (1, 5, 25, 50, 75, 95, 99)


def measured_values(job: Job) -> tuple[np.ndarray, dict[str, Any]]:
    """The values to measure, flattened, and a description of what they are."""
    ds = read_dataset(job.input)
    frame = job.option("frame")
    if frame is not None:
        check_frame(ds, frame)
    arr = decode(ds, job.input.name, index=frame)
    first = for_frame(ds, frame or 0)  # an enhanced image keeps its rescale in functional groups
    if frame is None and frame_count(ds) > 1 and first is not ds:
        import numpy as np

        views = [for_frame(ds, i) for i in range(len(arr))]
        # Modality values only when every frame has its LUT: a mix would be reported as what it is not.
        modality = bool(job.option("modality", True)) and all(has_modality_lut(view) for view in views)
        values = np.stack([modality_values(arr[i], views[i], modality) for i in range(len(arr))])
    else:
        modality = bool(job.option("modality", True)) and has_modality_lut(first)
        values = modality_values(arr, first, modality)
    about = {
        "frames": [frame] if frame is not None else list(range(frame_count(ds))),
        "values": "modality" if modality else "stored",
        "modality_lut_applied": modality,
        "samples_per_pixel": int(ds.get("SamplesPerPixel") or 1),
    }
    return values.ravel(), about


def number(value: Any) -> int | float:
    """A JSON number from a numpy scalar: int when it is whole, else float."""
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def summary(values: np.ndarray) -> dict[str, int | float]:
    return {
        "min": number(values.min()),
        "max": number(values.max()),
        "mean": float(values.mean()),
        "std": float(values.std()),
    }


def stats(job: Job) -> Outcome:
    import numpy as np

    values, about = measured_values(job)
    p1, p5, p25, p50, p75, p95, p99 = (number(p) for p in np.percentile(values, PERCENTILES))
    total = int(values.size)
    zeros = int(values.size - np.count_nonzero(values))
    result = summary(values)
    result.update(
        median=p50,
        range=number(values.max() - values.min()),
        iqr=number(p75 - p25),
        p1=p1, p5=p5, p25=p25, p75=p75, p95=p95, p99=p99,
        zero_pixels=zeros,
        zero_percent=100.0 * zeros / total if total else 0.0,
        unique_values=int(np.unique(values).size),
        total_pixels=total,
    )
    return Outcome(metadata={**result, **about})


def histogram(job: Job) -> Outcome:
    import numpy as np

    bins = int(job.option("bins"))
    value_range = job.option("range")
    if value_range is not None and not value_range[0] < value_range[1]:
        raise HubError(ErrorCode.INVALID_REQUEST, f"range must be [low, high] with low < high, got {value_range}", "e.g. \"range\": [-1024, 3071]")
    values, about = measured_values(job)
    counts, edges = np.histogram(values, bins=bins, range=tuple(value_range) if value_range else None)
    return Outcome(
        metadata={
            "bins": bins,
            "range": [float(edges[0]), float(edges[-1])],
            "counts": counts.tolist(),
            "bin_edges": edges.tolist(),
            "counted": int(counts.sum()),
            "total_pixels": int(values.size),
            **summary(values),
            **about,
        }
    )
