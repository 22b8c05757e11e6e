"""to_image: windowing agrees with DCMTK's dcmj2pnm; colour, frames, formats and errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import expect_error, expect_ok, sample
from factories import ct_slice, save
from PIL import Image
from pixels_support import dcmj2pnm, render, run_tool
from pydicom import dcmread

pytestmark = pytest.mark.toolkit


@pytest.mark.parametrize(
    ("sample_name", "options", "flags"),
    [
        ("CT_small.dcm", {"window_center": 40, "window_width": 400}, ("+on", "+Ww", "40", "400")),
        ("CT_small.dcm", {"window_center": -600, "window_width": 1500}, ("+on", "+Ww", "-600", "1500")),
        ("MR_small.dcm", {}, ("+on", "+Wi", "1")),  # the file's first window (600/1600)
        ("MR_small.dcm", {"window_center": 1000, "window_width": 301}, ("+on", "+Ww", "1000", "301")),
        ("MR_small.dcm", {"disable_voi_lut": True}, ("+on", "+Wm")),  # min-max window
        ("MR_small_RLE.dcm", {}, ("+on", "+Wi", "1")),
        ("examples_palette.dcm", {}, ("+on",)),
        ("examples_ybr_color.dcm", {"frame": 3}, ("+on", "+F", "4")),  # dcmj2pnm counts frames from 1
        ("SC_rgb_rle_16bit.dcm", {}, ("+on",)),
    ],
    ids=["ct-soft-tissue", "ct-lung", "mr-file-window", "mr-manual", "mr-minmax", "mr-rle", "palette", "ybr-frame3", "rgb16"],
)
def test_8bit_agrees_with_dcmj2pnm(tmp_path, sample_name, options, flags):
    ours, _ = render(tmp_path, f"sample:{sample_name}", **options)
    theirs = dcmj2pnm(tmp_path, sample_name, *flags)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1


def test_16bit_agrees_with_dcmj2pnm(tmp_path):
    ours, meta = render(tmp_path, "sample:CT_small.dcm", window_center=40, window_width=400, force_16bit=True)
    theirs = dcmj2pnm(tmp_path, "CT_small.dcm", "+on2", "+Ww", "40", "400")
    assert meta["bit_depth"] == 16 and ours.max() > 255
    assert np.abs(ours - theirs).max() <= 1


def test_monochrome1_is_inverted_like_dcmj2pnm(tmp_path):
    path = save(ct_slice(rows=32, cols=32, PhotometricInterpretation="MONOCHROME1"), tmp_path / "mono1.dcm")
    mono2 = save(ct_slice(rows=32, cols=32), tmp_path / "mono2.dcm")
    ours, _ = render(tmp_path, str(path), window_center=40, window_width=400)
    plain, _ = render(tmp_path, str(mono2), "plain.png", window_center=40, window_width=400)
    run_tool("dcmj2pnm", "+on", "+Ww", "40", "400", path, tmp_path / "mono1_dcmtk.png")
    with Image.open(tmp_path / "mono1_dcmtk.png") as img:
        reference = np.asarray(img).astype(np.int64)
    assert np.abs(ours - reference).max() <= 1
    assert np.array_equal(ours, 255 - plain)


def test_default_window_metadata_and_file_values(tmp_path):
    _, meta = render(tmp_path, "sample:MR_small.dcm")
    ds = dcmread(sample("MR_small.dcm"), stop_before_pixels=True)
    assert meta["window_source"] == "file"
    assert (meta["window"]["center"], meta["window"]["width"]) == (float(ds.WindowCenter), float(ds.WindowWidth))
    assert (meta["width"], meta["height"], meta["bit_depth"], meta["frame"]) == (ds.Columns, ds.Rows, 8, 0)


def test_auto_window_when_the_file_has_none(tmp_path):
    """CT_small has no window: centre at the HU median, width (p95 - p5) * 1.2."""
    _, meta = render(tmp_path, "sample:CT_small.dcm")
    ds = dcmread(sample("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert meta["window_source"] == "auto" and meta["modality_lut"] is True
    assert meta["window"]["center"] == pytest.approx(np.median(hu))
    assert meta["window"]["width"] == pytest.approx((np.percentile(hu, 95) - np.percentile(hu, 5)) * 1.2)


def test_normalize_overrides_the_file_window(tmp_path):
    _, meta = render(tmp_path, "sample:MR_small.dcm", normalize=True)
    assert meta["window_source"] == "auto"
    assert meta["window"]["center"] == pytest.approx(np.median(dcmread(sample("MR_small.dcm")).pixel_array))


def test_disable_modality_lut_windows_stored_values(tmp_path):
    """With the rescale off, a window around stored value 1064 equals the HU window around 40."""
    raw, meta = render(tmp_path, "sample:CT_small.dcm", "raw.png", window_center=1064, window_width=400, disable_modality_lut=True)
    hu, _ = render(tmp_path, "sample:CT_small.dcm", "hu.png", window_center=40, window_width=400)
    assert meta["modality_lut"] is False
    assert np.array_equal(raw, hu)


def test_colour_is_exact_rgb(tmp_path):
    ours, meta = render(tmp_path, "sample:examples_rgb_color.dcm")
    assert meta["mode"] == "RGB" and meta["window"] is None
    assert np.array_equal(ours, dcmread(sample("examples_rgb_color.dcm")).pixel_array)


@pytest.mark.parametrize(("name", "options", "fmt", "mode"), [
    ("out.jpg", {}, "JPEG", "L"),
    ("out.bmp", {}, "BMP", "L"),
    ("out.tif", {"force_16bit": True}, "TIFF", "I;16"),
    ("out.img", {"format": "png"}, "PNG", "L"),
    ("out.png", {"format": "jpeg", "quality": 50}, "JPEG", "L"),
])
def test_format_from_option_or_extension(tmp_path, name, options, fmt, mode):
    out = tmp_path / name
    expect_ok({"op": "to_image", "input": "sample:MR_small.dcm", "output": str(out), "options": options})
    with Image.open(out) as img:
        assert (img.format, img.mode, img.size) == (fmt, mode, (64, 64))


def test_frame_selects_the_frame(tmp_path):
    first, _ = render(tmp_path, "sample:SC_rgb_rle_2frame.dcm", "f0.png", frame=0)
    second, meta = render(tmp_path, "sample:SC_rgb_rle_2frame.dcm", "f1.png", frame=1)
    frames = dcmread(sample("SC_rgb_rle_2frame.dcm")).pixel_array
    assert meta["frames"] == 2 and np.array_equal(second, frames[1]) and np.array_equal(first, frames[0])


def test_frame_out_of_range_names_the_range(tmp_path):
    data = expect_error({"op": "to_image", "input": "sample:examples_ybr_color.dcm", "output": str(tmp_path / "x.png"), "options": {"frame": 30}}, "invalid_request")
    assert "0..29" in data["error"]["message"]
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("options", [
    {"window_center": 40, "window_width": 0},
    {"window_center": 40, "window_width": -5},
    {"window_center": 40},
    {"window_center": 40, "window_width": 400, "normalize": True},
    {"force_8bit": True, "force_16bit": True},
    {"force_16bit": True, "format": "jpeg"},
    {"quality": 80},
])
def test_bad_option_combinations_are_rejected(tmp_path, options):
    data = expect_error({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(tmp_path / "x.png"), "options": options}, "invalid_request")
    assert not (tmp_path / "x.png").exists()
    assert data["error"]["hint"]


@pytest.mark.parametrize("backend", ["python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp"])
@pytest.mark.parametrize("op", ["to_image", "batch_convert"])
def test_both_depths_are_refused_by_the_schema_for_every_backend(tmp_path, backend, op):
    # The op's schema says force_8bit and force_16bit exclude each other: the same answer from
    # every backend, before any of them runs.
    output = str(tmp_path / ("x.png" if op == "to_image" else "out"))
    request = {"op": op, "backend": backend, "input": str(sample("CT_small.dcm")), "output": output, "options": {"force_8bit": True, "force_16bit": True}}
    data = expect_error(request, "invalid_request")
    assert "force_8bit and force_16bit exclude each other" in data["error"]["message"]
    assert not list(tmp_path.iterdir())


def test_corrupt_pixel_data_is_a_decode_error_without_output(tmp_path):
    ds = ct_slice(rows=32, cols=32)
    ds.PixelData = ds.PixelData[:100]
    path = save(ds, tmp_path / "short.dcm")
    expect_error({"op": "to_image", "input": str(path), "output": str(tmp_path / "x.png")}, "decode_error")
    assert list(tmp_path.glob("x.png*")) == [] and not list(tmp_path.glob(".x.png*"))


def test_existing_output_is_kept_without_overwrite(tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"keep")
    expect_error({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(out)}, "output_exists")
    assert out.read_bytes() == b"keep"


def test_voi_lut_sequence_agrees_with_dcmj2pnm(tmp_path):
    """A VOI LUT Sequence (here a square-root curve, 12-bit entries) is the file's VOI when there is no window."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = ct_slice(rows=64, cols=64, PixelRepresentation=0, BitsStored=12, HighBit=11)
    del ds.WindowCenter, ds.WindowWidth, ds.RescaleSlope, ds.RescaleIntercept
    ds.PixelData = (np.add.outer(np.arange(64), np.arange(64)) * 32).astype(np.uint16).tobytes()
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.add_new(0x00283006, "US", [int(round(4095 * (i / 4095) ** 0.5)) for i in range(4096)])  # LUT Data
    item.LUTExplanation = "sqrt"
    ds.VOILUTSequence = Sequence([item])
    path = save(ds, tmp_path / "voilut.dcm")
    ours, meta = render(tmp_path, str(path))
    run_tool("dcmj2pnm", "+on", "+Wl", "1", path, tmp_path / "voilut_dcmtk.png")
    with Image.open(tmp_path / "voilut_dcmtk.png") as img:
        reference = np.asarray(img).astype(np.int64)
    assert meta["window_source"] == "file" and meta["window"]["method"] == "voi_lut"
    assert np.abs(ours - reference).max() <= 1


def test_sigmoid_voi_lut_function_agrees_with_dcmj2pnm(tmp_path):
    """VOI LUT Function SIGMOID in the file is honoured (dcmj2pnm +Wi 1 +Wfs)."""
    path = save(ct_slice(rows=64, cols=64, VOILUTFunction="SIGMOID"), tmp_path / "sigmoid.dcm")
    ours, meta = render(tmp_path, str(path))
    run_tool("dcmj2pnm", "+on", "+Wi", "1", "+Wfs", path, tmp_path / "sigmoid_dcmtk.png")
    with Image.open(tmp_path / "sigmoid_dcmtk.png") as img:
        reference = np.asarray(img).astype(np.int64)
    linear, _ = render(tmp_path, str(save(ct_slice(rows=64, cols=64), tmp_path / "linear.dcm")), "linear.png")
    assert meta["window"]["function"] == "SIGMOID"
    assert np.abs(ours - reference).max() <= 1
    assert not np.array_equal(ours, linear)


def test_enhanced_frames_use_their_functional_group_rescale_and_window(tmp_path):
    """Enhanced multi-frame images keep rescale and window in functional groups: frame 1 here has
    its own Pixel Value Transformation, the window is shared. Each rendered frame must equal what
    dcmj2pnm makes of a single-frame file with those values at the top level."""
    from factories import multiframe
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def group(**values):
        item = Dataset()
        for keyword, value in values.items():
            setattr(item, keyword, value)
        return Sequence([item])

    rows = cols = 16
    ramp = (np.add.outer(np.arange(rows), np.arange(cols)) * 40).astype(np.int16)
    ds = multiframe(frames=2, rows=rows, cols=cols)
    ds.PixelData = np.stack([ramp, ramp]).tobytes()
    for keyword in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        del ds[keyword]
    ds.PerFrameFunctionalGroupsSequence[0].PixelValueTransformationSequence = group(RescaleIntercept=-1024, RescaleSlope=1, RescaleType="HU")
    ds.PerFrameFunctionalGroupsSequence[1].PixelValueTransformationSequence = group(RescaleIntercept=-500, RescaleSlope=2, RescaleType="HU")
    ds.SharedFunctionalGroupsSequence = Sequence([Dataset()])
    ds.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence = group(WindowCenter=-300, WindowWidth=700)
    enhanced = save(ds, tmp_path / "enhanced.dcm")
    for frame, (intercept, slope) in enumerate([(-1024, 1), (-500, 2)]):
        ours, meta = render(tmp_path, str(enhanced), f"frame{frame}.png", frame=frame)
        assert (meta["window_source"], meta["window"]["center"], meta["window"]["width"]) == ("file", -300, 700)
        assert meta["modality_lut"] is True
        single = ct_slice(rows=rows, cols=cols, RescaleIntercept=intercept, RescaleSlope=slope, WindowCenter=-300, WindowWidth=700)
        single.PixelData = ramp.tobytes()
        reference = save(single, tmp_path / f"single{frame}.dcm")
        run_tool("dcmj2pnm", "+on", "+Wi", "1", reference, tmp_path / f"dcmtk{frame}.png")
        with Image.open(tmp_path / f"dcmtk{frame}.png") as img:
            theirs = np.asarray(img).astype(np.int64)
        assert np.abs(ours - theirs).max() <= 1, f"frame {frame}"
    assert not np.array_equal(*(render(tmp_path, str(enhanced), f"again{f}.png", frame=f)[0] for f in (0, 1)))
    assert "RescaleIntercept" not in dcmread(enhanced)  # the view never wrote into the file
