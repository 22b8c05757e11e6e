"""The toolkit adapters' former wrong answers, each on a real file: they are now right or a typed
refusal with the code `contract/input-conditions.json` gives the condition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import backend_request, expect_error, expect_ok, missing, require_backend
from corpus_files import one_bit_rle, pydicom_data_files
from dicom_hub.contract.conditions import TABLE, code_for, conditions
from dicom_hub.contract.errors import ErrorCode
from pydicom.data import get_testdata_file

PD = pydicom_data_files()


def real(name: str) -> Path:
    if f"pd:{name}" not in PD:
        missing("pydicom-data (pip install -e '.[dev]')")
    return PD[f"pd:{name}"]


def bundled(name: str) -> str:
    return str(get_testdata_file(name))


def test_every_condition_has_a_contract_code():
    table = json.loads(TABLE.read_text())["conditions"]
    assert table == conditions()
    for name, entry in table.items():
        assert ErrorCode(entry["code"]), name
        assert entry["when"], name
    assert code_for("no_pixel_data") is ErrorCode.INVALID_REQUEST
    assert code_for("truncated_pixel_data") is ErrorCode.DECODE_ERROR


@pytest.mark.parametrize("backend", ["gdcm", "csharp"])
def test_truncated_pixel_data_is_not_zero_filled(backend, tmp_path):
    require_backend(backend)
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request(backend, "transcode", bundled("MR_truncated.dcm"), out, transfer_syntax="explicit"), "decode_error")
    assert "8130" in data["error"]["message"] and "8192" in data["error"]["message"]
    assert not out.exists()


def test_pixelmed_refuses_1bit_rle_it_would_write_without_pixels(tmp_path):
    require_backend("pixelmed")
    source = one_bit_rle(tmp_path)
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request("pixelmed", "transcode", str(source), out, transfer_syntax="explicit"), "unsupported_op")
    assert "1-bit" in data["error"]["message"] and not out.exists()


def test_pixelmed_info_on_compressed_files_equals_python():
    require_backend("pixelmed")
    for name in ("JPEG-LL.dcm", "MR2_J2KR.dcm"):
        ours = expect_ok(backend_request("pixelmed", "info", str(real(name))))["metadata"]
        python = expect_ok(backend_request("python", "info", str(real(name))))["metadata"]
        for level in ("patient", "study", "series"):
            assert ours[level] == python[level], (name, level)
        for key in ("SOPInstanceUID", "Rows", "Columns", "BitsAllocated", "PixelRepresentation"):
            assert ours["image"][key] == python["image"][key], (name, key)
        assert ours["file"]["transfer_syntax"] == python["file"]["transfer_syntax"]


@pytest.mark.parametrize(("name", "limit"), [("eCT_Supplemental.dcm", "functional groups"), ("mlut_18.dcm", "Modality LUT Sequence"), ("color3d_jpeg_baseline.dcm", "YBR")])
def test_csharp_stats_refuse_what_they_would_misreport(name, limit):
    require_backend("csharp")
    data = expect_error(backend_request("csharp", "stats", str(real(name))), "unsupported_op")
    assert limit in data["error"]["message"]


def test_csharp_stored_values_of_enhanced_ct_are_still_served():
    require_backend("csharp")
    path = real("eCT_Supplemental.dcm")
    stored = pydicom.dcmread(path).pixel_array
    data = expect_ok(backend_request("csharp", "stats", str(path), modality=False))["metadata"]
    assert (data["min"], data["max"], data["values"]) == (stored.min(), stored.max(), "stored")


@pytest.mark.parametrize("path", ["explicit_VR-UN.dcm", "rtdose_rle.dcm"])
def test_dicom_rs_info_reads_elements_stored_as_un(path):
    require_backend("dicom-rs")
    source = str(real(path)) if f"pd:{path}" in PD else bundled(path)
    ours = expect_ok(backend_request("dicom-rs", "info", source))["metadata"]
    python = expect_ok(backend_request("python", "info", source))["metadata"]
    assert ours["patient"] == python["patient"] and ours["patient"]
    for key in ("SOPInstanceUID", "SOPClassUID", "Rows", "Columns"):
        assert ours["image"][key] == python["image"][key], key
    assert ours["series"]["Modality"] == python["series"]["Modality"]


def test_dicom_rs_reads_back_the_deflated_files_it_writes(tmp_path):
    require_backend("dicom-rs")
    out = tmp_path / "deflated.dcm"
    expect_ok(backend_request("dicom-rs", "transcode", bundled("CT_small.dcm"), out, transfer_syntax="deflated"))
    info = expect_ok(backend_request("dicom-rs", "info", str(out)))["metadata"]
    assert info["image"]["SOPInstanceUID"] == pydicom.dcmread(out).SOPInstanceUID
    expect_ok(backend_request("dicom-rs", "dump", str(out)))


def test_gdcm_converts_big_endian_exactly(tmp_path):
    require_backend("gdcm")
    for name in ("emri_small_big_endian.dcm", "SC_rgb_expb_16bit.dcm", "liver_expb.dcm"):
        out = tmp_path / name
        expect_ok(backend_request("gdcm", "transcode", str(real(name)), out, transfer_syntax="explicit"))
        written, source = pydicom.dcmread(out), pydicom.dcmread(real(name))
        assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert written.SOPInstanceUID == source.SOPInstanceUID
        assert np.array_equal(written.pixel_array, source.pixel_array), name


@pytest.mark.parametrize("backend", ["python", "dcmtk", "dicom-rs", "pixelmed", "csharp"])
def test_no_pixel_data_is_invalid_request_everywhere(backend, tmp_path):
    require_backend(backend)
    plan = bundled("rtplan.dcm")
    data = expect_error(backend_request(backend, "to_image", plan, tmp_path / "plan.png"), "invalid_request")
    assert "pixel data" in data["error"]["message"].lower()
    if backend in ("python", "dcmtk", "csharp"):
        expect_error(backend_request(backend, "stats", plan), "invalid_request")


def test_dcmtk_colour_stats_are_a_typed_refusal():
    require_backend("dcmtk")
    data = expect_error(backend_request("dcmtk", "stats", str(real("SC_rgb.dcm"))), "unsupported_op")
    assert "colour" in data["error"]["message"]


@pytest.mark.parametrize("backend", ["dcmtk", "gdcm", "dicom-rs", "csharp"])
def test_cut_encapsulated_pixel_data_is_decode_error(backend, tmp_path):
    """The file ends inside its JPEG 2000 Pixel Data: dicom-rs decoded the cut stream into pixels, others
    called it a missing codec or no Pixel Data at all."""
    require_backend(backend)
    out = tmp_path / "out.dcm"
    source = str(real("emri_small_jpeg_2k_lossless_too_short.dcm"))
    expect_error(backend_request(backend, "transcode", source, out, transfer_syntax="explicit"), "decode_error")
    assert not out.exists()
    if backend != "gdcm":
        expect_error(backend_request(backend, "to_image", source, tmp_path / "out.png"), "decode_error")


@pytest.mark.parametrize("backend", ["dcmtk", "gdcm", "dicom-rs", "csharp", "pixelmed"])
def test_one_bit_rle_is_a_typed_refusal(backend, tmp_path):
    """No toolkit here decodes 1-bit RLE: DCMTK and dicom-rs said decode_error, GDCM aborted."""
    require_backend(backend)
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request(backend, "transcode", str(one_bit_rle(tmp_path)), out, transfer_syntax="explicit"), "unsupported_op")
    assert "1-bit" in data["error"]["message"] and not out.exists()


def test_csharp_measures_deflated_files():
    """GDCM's selective read found no Pixel Data in a deflated data set, so csharp said invalid_request."""
    require_backend("csharp")
    path = bundled("image_dfl.dcm")
    stored = pydicom.dcmread(path).pixel_array
    data = expect_ok(backend_request("csharp", "stats", path, modality=False))["metadata"]
    assert (data["min"], data["max"]) == (stored.min(), stored.max())


def test_dcmtk_measures_jpeg_ls_like_python():
    require_backend("dcmtk")
    path = str(real("emri_small_jpeg_ls_lossless.dcm"))
    ours = expect_ok(backend_request("dcmtk", "stats", path))["metadata"]
    python = expect_ok(backend_request("python", "stats", path))["metadata"]
    assert (ours["min"], ours["max"]) == (python["min"], python["max"])


@pytest.mark.parametrize(("backend", "name", "limit"), [("dcmtk", "gdcm-US-ALOKA-16.dcm", "segmented"), ("dcmtk", "SC_rgb_32bit.dcm", "32-bit"), ("dicom-rs", "SC_rgb_32bit.dcm", "32")])
def test_known_rendering_limits_are_typed_refusals(backend, name, limit, tmp_path):
    require_backend(backend)
    data = expect_error(backend_request(backend, "to_image", str(real(name)), tmp_path / "out.png"), "unsupported_op")
    assert limit in data["error"]["message"]


def test_pixel_length_check_knows_422_subsampling_and_truncation():
    from dicom_hub.adapters.toolkit.pixel_input import read_pixel_header, refuse_truncated_pixels
    from dicom_hub.contract.errors import HubError

    ybr = Path(bundled("SC_ybr_full_422_uncompressed.dcm"))
    assert read_pixel_header(ybr).expected_length == 100 * 100 * 2
    refuse_truncated_pixels(ybr)  # complete: two samples a pixel in 4:2:2
    with pytest.raises(HubError) as refused:
        refuse_truncated_pixels(Path(bundled("MR_truncated.dcm")))
    assert refused.value.code is ErrorCode.DECODE_ERROR
