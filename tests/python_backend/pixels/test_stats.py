"""stats and histogram: min/max agree with DCMTK (dcmj2pnm -im) and dicom3tools (dcstats); the rest is
checked against numpy on pydicom's own decoded values."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from conftest import expect_error, expect_ok, require_tool, sample
from pydicom import dcmread


def stats(source: str, **options) -> dict:
    return expect_ok({"op": "stats", "input": source, "options": options})["metadata"]


def hounsfield(name: str) -> np.ndarray:
    ds = dcmread(sample(name))
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.mark.toolkit
def test_modality_min_max_agree_with_dcmj2pnm():
    run = subprocess.run([require_tool("dcmj2pnm"), "-v", "-im", "-o", str(sample("CT_small.dcm"))], capture_output=True, text=True, timeout=60)
    text = run.stdout + run.stderr
    high = int(re.search(r"maximum pixel value\s*:\s*(-?\d+)", text).group(1))
    low = int(re.search(r"minimum pixel value\s*:\s*(-?\d+)", text).group(1))
    result = stats("sample:CT_small.dcm")
    assert (result["min"], result["max"], result["range"]) == (low, high, high - low)
    assert result["values"] == "modality"


@pytest.mark.toolkit
def test_stored_mean_agrees_with_dcstats():
    """dcstats (dicom3tools) prints the stored-value mean as an integer on stderr."""
    run = subprocess.run([require_tool("dcstats"), str(sample("CT_small.dcm"))], capture_output=True, text=True, timeout=60)
    mean = int(re.search(r"Signed mean = \S+\s+\((-?\d+) dec\)", run.stdout + run.stderr).group(1))
    result = stats("sample:CT_small.dcm", modality=False)
    assert result["values"] == "stored" and result["modality_lut_applied"] is False
    assert abs(result["mean"] - mean) < 1


def test_all_fields_match_numpy():
    hu = hounsfield("CT_small.dcm")
    result = stats("sample:CT_small.dcm")
    p = dict(zip((1, 5, 25, 50, 75, 95, 99), np.percentile(hu, [1, 5, 25, 50, 75, 95, 99]), strict=True))
    assert result["mean"] == pytest.approx(hu.mean()) and result["std"] == pytest.approx(hu.std())
    assert result["median"] == pytest.approx(p[50]) and result["iqr"] == pytest.approx(p[75] - p[25])
    for q in (1, 5, 25, 75, 95, 99):
        assert result[f"p{q}"] == pytest.approx(p[q])
    assert result["zero_pixels"] == int((hu == 0).sum()) and result["zero_percent"] == pytest.approx(100 * (hu == 0).mean())
    assert result["unique_values"] == len(np.unique(hu)) and result["total_pixels"] == hu.size == 128 * 128


def test_one_frame_or_all_frames():
    frames = dcmread(sample("rtdose.dcm")).pixel_array  # 15 frames, no rescale
    one = stats("sample:rtdose.dcm", frame=7)
    every = stats("sample:rtdose.dcm")
    assert one["frames"] == [7] and (one["min"], one["max"]) == (frames[7].min(), frames[7].max())
    assert every["total_pixels"] == frames.size and every["mean"] == pytest.approx(frames.mean())


def test_frame_out_of_range():
    data = expect_error({"op": "stats", "input": "sample:rtdose.dcm", "options": {"frame": 15}}, "invalid_request")
    assert "0..14" in data["error"]["message"]


def test_histogram_counts_and_edges():
    hu = hounsfield("CT_small.dcm")
    result = expect_ok({"op": "histogram", "input": "sample:CT_small.dcm", "options": {"bins": 16, "range": [-1000, 1000]}})["metadata"]
    counts, edges = np.histogram(hu, bins=16, range=(-1000, 1000))
    assert result["counts"] == counts.tolist() and result["bin_edges"] == pytest.approx(edges.tolist())
    assert result["counted"] == int(((hu >= -1000) & (hu <= 1000)).sum()) < hu.size
    assert (result["min"], result["max"]) == (hu.min(), hu.max())


def test_histogram_default_bins_span_the_data():
    result = expect_ok({"op": "histogram", "input": "sample:MR_small.dcm"})["metadata"]
    data = dcmread(sample("MR_small.dcm")).pixel_array
    assert len(result["counts"]) == 256 and sum(result["counts"]) == data.size
    assert result["range"] == [data.min(), data.max()]


@pytest.mark.parametrize("options", [{"range": [5, 5]}, {"range": [10, 1]}, {"bins": 0}])
def test_histogram_rejects_bad_options(options):
    expect_error({"op": "histogram", "input": "sample:MR_small.dcm", "options": options}, "invalid_request")


def test_image_without_pixels_is_refused():
    data = expect_error({"op": "stats", "input": "sample:rtplan.dcm"}, "invalid_request")
    assert "Pixel Data" in data["error"]["message"]


def test_enhanced_frames_use_their_own_rescale(tmp_path):
    """Per-frame Pixel Value Transformation (enhanced IODs): each frame in its own modality values."""
    from factories import multiframe, save
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = multiframe(frames=2)  # frame f holds the stored value 100 * (f + 1)
    del ds.RescaleIntercept, ds.RescaleSlope
    for item, intercept in zip(ds.PerFrameFunctionalGroupsSequence, (-1000, 50), strict=True):
        transform = Dataset()
        transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = intercept, 2, "HU"
        item.PixelValueTransformationSequence = Sequence([transform])
    path = str(save(ds, tmp_path / "enhanced.dcm"))
    assert stats(path, frame=0)["min"] == 2 * 100 - 1000
    assert stats(path, frame=1)["max"] == 2 * 200 + 50
    every = stats(path)
    assert (every["min"], every["max"], every["modality_lut_applied"]) == (-800, 450, True)
    assert stats(path, modality=False)["max"] == 200
