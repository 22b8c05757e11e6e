"""Python backend answers that used to be ok and wrong, on real files (pydicom and pydicom-data).

- decompressing kept neither the SOP Instance UID (pydicom 3 draws a new one) ...
- ... nor a decodable 1-bit image (a byte a pixel while Bits Allocated stayed 1);
- a file whose encapsulated Pixel Data is cut short read as an empty, valid data set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import backend_request, expect_error, expect_ok
from pydicom import dcmread
from pydicom.data import get_testdata_file

LIVER = "liver.dcm"  # pydicom-data: Segmentation, 3 frames of 512 x 512, Bits Allocated 1
TOO_SHORT = "emri_small_jpeg_2k_lossless_too_short.dcm"  # pydicom-data: JPEG 2000 fragments cut short


def data_file(name: str) -> Path:
    path = get_testdata_file(name, read=False, download=False)
    if path is None:
        pytest.fail(f"{name} is missing: install the dev extra (pydicom-data)")
    return Path(path)


@pytest.fixture
def liver_j2k(tmp_path) -> Path:
    """liver.dcm's 1-bit frames as JPEG 2000 Lossless, encoded by OpenJPEG.

    pydicom-data 1.0.0 on PyPI does not ship `liver_nonbyte_aligned_j2k.dcm` / `liver_j2k.dcm`,
    so the same kind of file is built from its original the way they were: one codestream of
    precision 1 a frame.
    """
    from openjpeg.utils import encode_array
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    ds = dcmread(data_file(LIVER))
    frames = [encode_array(frame.astype(np.uint8), bits_stored=1, photometric_interpretation=2, use_mct=False) for frame in ds.pixel_array]
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    path = tmp_path / "liver_j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_one_bit_jpeg2000_decompressed_is_packed(liver_j2k, tmp_path):
    out = tmp_path / "liver_explicit.dcm"
    expect_ok(backend_request("python", "transcode", str(liver_j2k), out, transfer_syntax="explicit", verify="pixels"))
    written, original = dcmread(out), dcmread(data_file(LIVER))
    assert written.BitsAllocated == 1
    assert len(written.PixelData) == 3 * 512 * 512 // 8  # eight pixels a byte
    assert np.array_equal(written.pixel_array, original.pixel_array)
    assert written.SOPInstanceUID == original.SOPInstanceUID


def test_batch_decompress_keeps_the_sop_instance_uid(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    names = ("emri_small_jpeg_2k_lossless.dcm", "emri_small_RLE.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm")
    for name in names:
        (source / name).write_bytes(data_file(name).read_bytes())
    out = tmp_path / "out"
    data = expect_ok({"op": "batch_decompress", "input": str(source), "output": str(out), "options": {"workers": 1, "suffix": ""}})
    assert len(data["output_files"]) == len(names), data["metadata"]
    for name in names:
        before, after = dcmread(source / name), dcmread(out / name)
        assert not after.file_meta.TransferSyntaxUID.is_compressed
        assert after.SOPInstanceUID == before.SOPInstanceUID == after.file_meta.MediaStorageSOPInstanceUID
        assert np.array_equal(after.pixel_array, before.pixel_array)


@pytest.mark.parametrize("op", ["info", "validate", "stats", "dump", "to_json"])
def test_truncated_fragments_are_a_decode_error(op):
    data = expect_error(backend_request("python", op, str(data_file(TOO_SHORT))), "decode_error")
    assert "truncated" in data["error"]["message"] and "Pixel Data" in data["error"]["message"]


def test_truncated_fragments_to_image_is_a_decode_error(tmp_path):
    expect_error(backend_request("python", "to_image", str(data_file(TOO_SHORT)), tmp_path / "x.png"), "decode_error")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("name", "emptied"),
    [("mlut_18.dcm", "ModalityLUTSequence"), ("CT_small.dcm", "RescaleSlope")],
)
def test_modality_lut_applied_only_when_it_was(tmp_path, name, emptied):
    """An empty Modality LUT Sequence or Rescale Slope transforms nothing: `stats` must say stored."""
    ds = dcmread(data_file(name))
    ds[emptied].value = [] if emptied.endswith("Sequence") else None
    path = tmp_path / name
    ds.save_as(path)
    meta = expect_ok(backend_request("python", "stats", str(path)))["metadata"]
    assert (meta["values"], meta["modality_lut_applied"]) == ("stored", False)
    assert meta["max"] == int(ds.pixel_array.max()) and meta["min"] == int(ds.pixel_array.min())


def test_modality_lut_applied_when_present():
    meta = expect_ok(backend_request("python", "stats", str(data_file("CT_small.dcm"))))["metadata"]
    ds = dcmread(data_file("CT_small.dcm"))
    assert (meta["values"], meta["modality_lut_applied"]) == ("modality", True)
    assert meta["min"] == int(ds.pixel_array.min()) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
