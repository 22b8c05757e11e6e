"""transcode: lossless targets round-trip exactly, lossy ones are marked, other toolkits read the results."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import expect_error, sample
from factories import multiframe, save
from pixels_support import pixels, run_tool, transcode
from pydicom import dcmread

LOSSLESS = ["explicit", "implicit", "deflated", "rle", "jpeg_lossless", "jpegls", "j2k"]
UIDS = {
    "explicit": "1.2.840.10008.1.2.1",
    "implicit": "1.2.840.10008.1.2",
    "deflated": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg": "1.2.840.10008.1.2.4.50",
    "jpeg_lossless": "1.2.840.10008.1.2.4.70",
    "jpegls": "1.2.840.10008.1.2.4.80",
    "jpegls_near": "1.2.840.10008.1.2.4.81",
    "j2k": "1.2.840.10008.1.2.4.90",
    "j2k_lossy": "1.2.840.10008.1.2.4.91",
}


@pytest.mark.parametrize("target", LOSSLESS)
@pytest.mark.parametrize("source", ["CT_small.dcm", "MR_small_bigendian.dcm", "examples_rgb_color.dcm", "SC_rgb_rle_2frame.dcm"])
def test_lossless_round_trip_is_exact(tmp_path, source, target):
    out, meta = transcode(tmp_path, f"sample:{source}", target)
    ds = dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == UIDS[target] == meta["transfer_syntax"]
    assert np.array_equal(ds.pixel_array, pixels(sample(source)))
    assert ds.SOPInstanceUID == dcmread(sample(source), stop_before_pixels=True).SOPInstanceUID
    assert "LossyImageCompression" not in ds
    if ds.SamplesPerPixel == 3:
        assert ds.PhotometricInterpretation == "RGB" and ds.PlanarConfiguration == 0


def test_target_by_uid_and_multiframe(tmp_path):
    path = save(multiframe(frames=3, rows=8, cols=8), tmp_path / "mf.dcm")
    out, _ = transcode(tmp_path, path, "1.2.840.10008.1.2.4.80")
    assert dcmread(out).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.80"
    assert np.array_equal(pixels(out), pixels(path))


def test_ybr_422_uncompressed_becomes_ybr_full(tmp_path):
    out, meta = transcode(tmp_path, "sample:SC_ybr_full_422_uncompressed.dcm", "rle")
    assert meta["photometric_interpretation"] == "YBR_FULL"
    assert np.array_equal(pixels(out), pixels(sample("SC_ybr_full_422_uncompressed.dcm")))


@pytest.mark.parametrize(("target", "source", "tolerance", "options"), [
    ("jpegls_near", "CT_small.dcm", 2, {}),
    ("jpegls_near", "examples_rgb_color.dcm", 5, {"near_lossless_error": 5}),
    ("j2k_lossy", "CT_small.dcm", None, {"compression_ratio": 8}),
    ("jpeg", "examples_rgb_color.dcm", None, {"quality": 95}),
])
def test_lossy_targets_are_marked(tmp_path, target, source, tolerance, options):
    before = dcmread(sample(source))
    out, meta = transcode(tmp_path, f"sample:{source}", target, **options)
    ds = dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == UIDS[target]
    assert ds.LossyImageCompression == "01"
    assert float(ds.LossyImageCompressionRatio) == pytest.approx(len(before.PixelData) / len(ds.PixelData), rel=0.01)
    assert ds.LossyImageCompressionMethod == {"jpegls_near": "ISO_14495_1", "j2k_lossy": "ISO_15444_1", "jpeg": "ISO_10918_1"}[target]
    assert ds.SOPInstanceUID != before.SOPInstanceUID == before.file_meta.MediaStorageSOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == meta["sop_instance_uid"]
    error = np.abs(ds.pixel_array.astype(np.float64) - before.pixel_array)
    if tolerance is not None:  # near-lossless guarantees the bound
        assert error.max() <= tolerance
    assert error.mean() < 0.02 * (before.pixel_array.max() - before.pixel_array.min())


def test_keep_sop_instance_uid(tmp_path):
    out, meta = transcode(tmp_path, "sample:CT_small.dcm", "jpegls_near", keep_sop_instance_uid=True)
    assert dcmread(out).SOPInstanceUID == dcmread(sample("CT_small.dcm")).SOPInstanceUID
    assert meta["sop_instance_uid_changed"] is False


def compressed_samples() -> list[str]:
    """Every bundled sample with compressed pixel data."""
    from dicom_hub.contract.files import sample_dir

    names = []
    for path in sorted(sample_dir().glob("*.dcm")):
        try:
            ds = dcmread(path, defer_size="1 KB")
        except Exception:
            continue
        ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        if ts and ts.is_compressed and "PixelData" in ds:
            names.append(path.name)
    return names


@pytest.mark.parametrize("name", compressed_samples())
def test_decompress_every_compressed_sample(tmp_path, name):
    """Every compressed sample decodes to explicit VR with the pixels pydicom decodes, UID kept;
    the few that no installed codec can read (damaged on purpose in pydicom's suite) are decode_error."""
    try:
        reference = pixels(sample(name))
    except Exception:
        request = {"op": "transcode", "input": f"sample:{name}", "output": str(tmp_path / "x.dcm"), "options": {"transfer_syntax": "explicit"}}
        expect_error(request, "decode_error")
        assert not (tmp_path / "x.dcm").exists()
        return
    out, meta = transcode(tmp_path, f"sample:{name}", "explicit")
    ds = dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(ds.pixel_array, reference)
    assert meta["sop_instance_uid_changed"] is False


@pytest.mark.toolkit
@pytest.mark.parametrize(("target", "tool"), [("rle", "dcmdrle"), ("jpegls", "dcmdjpls"), ("jpeg_lossless", "dcmdjpeg")])
def test_dcmtk_decodes_our_lossless_output_exactly(tmp_path, target, tool):
    for source in ("CT_small.dcm", "examples_rgb_color.dcm"):
        ours, _ = transcode(tmp_path, f"sample:{source}", target, name=f"{source}.{target}.dcm")
        plain = tmp_path / f"{source}.{target}.dcmtk.dcm"
        run_tool(tool, ours, plain)
        assert np.array_equal(pixels(plain), pixels(sample(source))), source


@pytest.mark.toolkit
def test_dcmtk_decodes_our_jpeg_baseline_in_the_right_colours(tmp_path):
    """The colour space we label (YBR_FULL) is the one in the stream: DCMTK's decoder gives the same picture."""
    ours, meta = transcode(tmp_path, "sample:examples_rgb_color.dcm", "jpeg", quality=95)
    assert meta["photometric_interpretation"] == "YBR_FULL" and meta["encoder"] == "python-gdcm"
    plain = tmp_path / "baseline.dcmtk.dcm"
    run_tool("dcmdjpeg", ours, plain)
    source = pixels(sample("examples_rgb_color.dcm")).astype(np.float64)
    assert np.abs(pixels(plain).astype(np.float64) - source).mean() < 3


def test_same_transfer_syntax_is_copied_unchanged(tmp_path):
    out, meta = transcode(tmp_path, "sample:SC_rgb_jpeg_dcmtk.dcm", "jpeg")
    assert meta["changed"] is False and meta["lossy"] is False
    assert dcmread(out).PixelData == dcmread(sample("SC_rgb_jpeg_dcmtk.dcm")).PixelData


@pytest.mark.parametrize(("options", "code", "words"), [
    ({"transfer_syntax": "big_endian"}, "invalid_request", "retired"),
    ({"transfer_syntax": "1.2.840.10008.1.2.2"}, "invalid_request", "retired"),
    ({"transfer_syntax": "mpeg2"}, "invalid_request", "'mpeg2'"),
    ({"transfer_syntax": "rle", "quality": 80}, "invalid_request", "quality"),
    ({"transfer_syntax": "j2k", "compression_ratio": 5}, "invalid_request", "compression_ratio"),
    ({"transfer_syntax": "htj2k"}, "codec_unavailable", "High-Throughput"),
    ({"transfer_syntax": "jpeg"}, "unsupported_option", "8-bit"),
])
def test_refusals(tmp_path, options, code, words):
    out = tmp_path / "x.dcm"
    data = expect_error({"op": "transcode", "backend": "python", "input": "sample:CT_small.dcm", "output": str(out), "options": options}, code)
    assert words in data["error"]["message"] and data["error"]["hint"]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_missing_decoder_is_codec_unavailable_with_the_package(tmp_path, monkeypatch):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    decoder = get_decoder(JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pyjpegls": ("numpy", "pyjpegls")})
    data = expect_error({"op": "transcode", "backend": "python", "input": "sample:MR_small_jpeg_ls_lossless.dcm", "output": str(tmp_path / "x.dcm"), "options": {"transfer_syntax": "explicit"}}, "codec_unavailable")
    assert "pyjpegls" in data["error"]["hint"] and "dicom-hub[codecs]" in data["error"]["hint"]


def test_odd_sized_rgb_to_rle_does_not_take_gdcm(tmp_path):
    """GDCM's RLE encoder aborts the process on a 3x3 RGB image; the encoder is chosen to avoid it."""
    out, meta = transcode(tmp_path, "sample:SC_rgb_small_odd_big_endian.dcm", "rle")
    assert meta["encoder"].startswith("pydicom/") and "gdcm" not in meta["encoder"]
    assert np.array_equal(pixels(out), pixels(sample("SC_rgb_small_odd.dcm")))


def test_successive_lossy_steps_accumulate_ratio_and_method(tmp_path):
    """PS3.3 C.7.6.1.1.5: each lossy step appends its ratio and method."""
    first, _ = transcode(tmp_path, "sample:CT_small.dcm", "jpegls_near")
    second, _ = transcode(tmp_path, first, "j2k_lossy", name="second.dcm")
    ds = dcmread(second)
    assert list(ds.LossyImageCompressionMethod) == ["ISO_14495_1", "ISO_15444_1"]
    assert len(ds.LossyImageCompressionRatio) == 2 and ds.LossyImageCompression == "01"
