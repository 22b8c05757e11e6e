"""The DCMTK adapter running the real DCMTK tools on pydicom's bundled samples, compared with
the Python backend (info) and with pydicom's own decoding (pixels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import expect_error, expect_ok, require_backend, sample
from pydicom import dcmread

pytestmark = pytest.mark.toolkit

INFO_SAMPLES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "SC_rgb_rle_2frame.dcm", "rtdose_rle.dcm", "JPEG-lossy.dcm", "image_dfl.dcm"]


@pytest.fixture(autouse=True)
def dcmtk():
    return require_backend("dcmtk")


def req(op: str, input: str | None = "sample:CT_small.dcm", output=None, **options) -> dict:
    request = {"op": op, "backend": "dcmtk", "options": options}
    if input is not None:
        request["input"] = input
    if output is not None:
        request["output"] = str(output)
    return request


def test_version_is_parsed(dcmtk):
    assert dcmtk.version().count(".") == 2 and dcmtk.version()[0].isdigit()


@pytest.mark.parametrize("name", INFO_SAMPLES)
def test_info_matches_the_python_backend(name):
    ours = expect_ok(req("info", f"sample:{name}"))["metadata"]
    if name == "image_dfl.dcm":  # the deflated sample: only DCMTK reads it here; check a few known values
        assert ours["file"]["transfer_syntax"] == "1.2.840.10008.1.2.1.99"
        assert ours["image"]["Rows"] > 0
        return
    reference = expect_ok({"op": "info", "input": f"sample:{name}", "backend": "python"})["metadata"]
    assert ours == reference


def test_info_values_are_typed_like_the_contract():
    image = expect_ok(req("info"))["metadata"]["image"]
    assert image["Rows"] == 128 and isinstance(image["Rows"], int)  # US: a number
    assert image["PixelSpacing"] == ["0.661468", "0.661468"]  # DS: the stored strings
    assert image["ImageType"] == ["ORIGINAL", "PRIMARY", "AXIAL"]


def test_dump_lists_elements_and_honours_depth_and_pixel_options():
    full = expect_ok(req("dump"))
    tags = [e["tag"] for e in full["metadata"]["elements"]]
    assert "00100010" in tags and "7FE00010" not in tags
    assert any(e["depth"] == 1 for e in full["metadata"]["elements"])  # OtherPatientIDsSequence items
    assert "(0010,0010) PN [CompressedSamples^CT1]" in full["stdout"]
    top = expect_ok(req("dump", max_depth=0, include_pixel_data=True, max_value_length=10))["metadata"]["elements"]
    assert all(e["depth"] == 0 for e in top)
    assert any(e["tag"] == "7FE00010" and e["value"] == "<OW binary, 32768 bytes>" for e in top)
    assert all(len(e["value"]) <= 10 for e in top if not e["value"].startswith("<"))


def test_dump_to_file(tmp_path):
    out = tmp_path / "dump.txt"
    data = expect_ok(req("dump", output=out))
    assert data["output_files"] == [str(out)] and "PatientName" in out.read_text()


def test_to_json_equals_pydicom_for_text_elements(tmp_path):
    out = tmp_path / "ct.json"
    expect_ok(req("to_json", output=out, indent=2))
    written = json.loads(out.read_text())
    assert out.read_text().startswith("{\n  ")
    ds = dcmread(sample("CT_small.dcm"))
    assert written["00100010"]["Value"] == [{"Alphabetic": str(ds.PatientName)}]
    assert written["00280010"]["Value"] == [ds.Rows]
    assert "InlineBinary" in written["7FE00010"]


def test_to_json_bulk_omit_and_file_meta():
    data = expect_ok(req("to_json", bulk_data="omit", include_file_meta=True))["metadata"]["dataset"]
    assert "7FE00010" not in data and "00100010" in data
    assert data["00020010"]["Value"] == ["1.2.840.10008.1.2.1"]


def test_validate_is_structural():
    good = expect_ok(req("validate"))["metadata"]
    assert good["valid"] is True and good["errors"] == []
    bad = expect_ok(req("validate", "sample:no_meta.dcm"))["metadata"]
    assert bad["valid"] is False and bad["errors"]


def test_stats_min_max_match_pydicom():
    ds = dcmread(sample("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    stats = expect_ok(req("stats"))["metadata"]
    assert (stats["min"], stats["max"]) == (hu.min(), hu.max())
    raw = expect_ok(req("stats", modality=False, frame=0))["metadata"]
    assert (raw["min"], raw["max"]) == (ds.pixel_array.min(), ds.pixel_array.max())


def _window(values: np.ndarray, center: float, width: float, top: int) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear window onto 0..top."""
    scaled = ((values - (center - 0.5)) / (width - 1) + 0.5) * top
    return np.clip(scaled, 0, top)


def test_to_image_manual_window_within_one_grey_level(tmp_path):
    from PIL import Image

    out = tmp_path / "ct.png"
    meta = expect_ok(req("to_image", output=out, window_center=40, window_width=400))["metadata"]
    assert meta == {"format": "png", "width": 128, "height": 128, "mode": "L"}
    ds = dcmread(sample("CT_small.dcm"))
    expected = _window(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), 40, 400, 255)
    got = np.asarray(Image.open(out), dtype=float)
    assert np.abs(got - expected).max() <= 1


def test_to_image_min_max_without_modality_lut_16bit(tmp_path):
    from PIL import Image

    out = tmp_path / "ct16.png"
    expect_ok(req("to_image", output=out, disable_voi_lut=True, disable_modality_lut=True, force_16bit=True))
    raw = dcmread(sample("CT_small.dcm")).pixel_array.astype(float)
    expected = (raw - raw.min()) / (raw.max() - raw.min()) * 65535
    got = np.asarray(Image.open(out), dtype=float)
    assert np.abs(got - expected).max() <= 1 * 257  # one 8-bit grey level


def test_to_image_frame_of_a_colour_multiframe_as_jpeg(tmp_path):
    from PIL import Image

    out = tmp_path / "f1.jpg"
    expect_ok(req("to_image", "sample:SC_rgb_rle_2frame.dcm", output=out, frame=1, quality=100))
    expected = dcmread(sample("SC_rgb_rle_2frame.dcm")).pixel_array[1].astype(float)
    got = np.asarray(Image.open(out), dtype=float)
    assert got.shape == expected.shape and np.abs(got - expected).mean() < 2  # JPEG at quality 100


def test_to_image_refuses_normalize_and_missing_frames(tmp_path):
    expect_error(req("to_image", output=tmp_path / "n.png", normalize=True), "unsupported_option")
    expect_error(req("to_image", output=tmp_path / "f.png", frame=5), "invalid_request")
    expect_error(req("stats", "sample:SC_rgb_rle_2frame.dcm", frame=2), "invalid_request")
    assert list(tmp_path.iterdir()) == []


LOSSLESS = ["explicit", "implicit", "deflated", "rle", "jpeg_lossless", "jpegls", "1.2.840.10008.1.2.4.80"]


@pytest.mark.parametrize("source", ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"])
@pytest.mark.parametrize("target", LOSSLESS)
def test_lossless_transcode_is_pixel_exact(tmp_path, source, target):
    from dicom_hub.adapters.toolkit.syntaxes import writable as resolve

    out = tmp_path / "out.dcm"
    meta = expect_ok(req("transcode", f"sample:{source}", output=out, transfer_syntax=target))["metadata"]
    written = dcmread(out)
    assert written.file_meta.TransferSyntaxUID == resolve(target) == meta["transfer_syntax"]
    assert np.array_equal(written.pixel_array, dcmread(sample(source)).pixel_array)
    assert written.SOPInstanceUID == dcmread(sample(source)).SOPInstanceUID


def test_lossy_jpeg_gets_a_new_uid_unless_kept(tmp_path):
    source = dcmread(sample("SC_rgb_rle.dcm"))
    new = tmp_path / "new.dcm"
    expect_ok(req("transcode", "sample:SC_rgb_rle.dcm", output=new, transfer_syntax="jpeg", quality=95))
    written = dcmread(new)
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert written.SOPInstanceUID != source.SOPInstanceUID
    assert np.abs(written.pixel_array.astype(float) - source.pixel_array).mean() < 3
    kept = tmp_path / "kept.dcm"
    expect_ok(req("transcode", "sample:SC_rgb_rle.dcm", output=kept, transfer_syntax="jpeg", keep_sop_instance_uid=True))
    assert dcmread(kept).SOPInstanceUID == source.SOPInstanceUID


def test_near_lossless_jpegls_stays_within_the_error(tmp_path):
    out = tmp_path / "near.dcm"
    expect_ok(req("transcode", "sample:SC_rgb_rle.dcm", output=out, transfer_syntax="jpegls_near", near_lossless_error=3))
    written, source = dcmread(out), dcmread(sample("SC_rgb_rle.dcm"))
    assert written.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.81"
    assert np.abs(written.pixel_array.astype(int) - source.pixel_array.astype(int)).max() <= 3


def test_transcode_errors_leave_no_output(tmp_path):
    out = tmp_path / "x.dcm"
    expect_error(req("transcode", output=out, transfer_syntax="jpeg"), "unsupported_option")  # 16-bit: not narrowed silently
    expect_error(req("transcode", output=out, transfer_syntax="1.2.840.10008.1.2.2"), "invalid_request")  # big endian: read only
    expect_error(req("transcode", "sample:JPEG2000.dcm", output=out, transfer_syntax="explicit"), "codec_unavailable")
    expect_error(req("transcode", output=out, transfer_syntax="j2k"), "codec_unavailable")
    # signed data: DCMTK's near-lossless JPEG-LS encoder refuses it (its message is kept)
    data = expect_error(req("transcode", output=out, transfer_syntax="jpegls_near"), "codec_unavailable")
    assert "pixel representation" in data["stderr"].lower()
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_modify_tags_writes_a_copy(tmp_path):
    source = sample("CT_small.dcm")
    before = source.read_bytes()
    out = tmp_path / "mod.dcm"
    expect_ok(req("modify_tags", output=out, set={"PatientName": "Doe^J", "SoftwareVersions": ["a", "b"], "PatientComments": "new"}, delete=["StationName", "PatientBirthName"]))
    ds = dcmread(out)
    assert str(ds.PatientName) == "Doe^J" and list(ds.SoftwareVersions) == ["a", "b"] and ds.PatientComments == "new"
    assert "StationName" not in ds
    assert source.read_bytes() == before and not list(tmp_path.glob("*.bak"))


def test_modify_tags_refuses_bad_values_and_keeps_outputs(tmp_path):
    out = tmp_path / "mod.dcm"
    expect_error(req("modify_tags", output=out, set={"Rows": "abc"}), "invalid_request")
    out.write_text("keep me")
    expect_error(req("modify_tags", output=out, set={"PatientID": "X"}), "output_exists")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize(("path", "code"), [("not_dicom", "not_dicom"), ("sample:MR_truncated.dcm", "decode_error")])
def test_read_errors_are_mapped_and_keep_the_tool_message(tmp_path, path, code):
    if path == "not_dicom":
        path = tmp_path / "text.dcm"
        path.write_text("hello, not DICOM\n" * 20)
    data = expect_error(req("info", str(path)), code)
    assert "E:" in data["stderr"] and data["returncode"] != 0


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "nested_priv_SQ.dcm"])
def test_anonymize_meets_the_basic_profile(tmp_path, name):
    from dicom_hub.contract.dicom.deid.profile import load_table

    before = sample(name).read_bytes()
    out = tmp_path / "anon.dcm"
    expect_ok(req("anonymize", f"sample:{name}", output=out))
    source, result = dcmread(sample(name)), dcmread(out)
    table = load_table()
    original = {(int(e.tag), str(e.value)) for e in source.iterall() if int(e.tag) in table and table[int(e.tag)].basic != "K" and not e.is_empty and e.VR != "SQ"}
    surviving = {(int(e.tag), str(e.value)) for e in result.iterall() if not e.is_empty and e.VR != "SQ"}
    assert not original & surviving
    assert not any(e.tag.is_private for e in result.iterall())
    assert result.PatientIdentityRemoved == "YES" and result.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    if "SOPInstanceUID" in source:
        assert result.SOPInstanceUID != source.SOPInstanceUID and result.file_meta.MediaStorageSOPInstanceUID == result.SOPInstanceUID
    assert sample(name).read_bytes() == before


def test_anonymize_keeps_references_consistent(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = dcmread(sample("CT_small.dcm"))
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID  # the same UID, nested
    ds.ReferencedImageSequence = Sequence([ref])
    source = tmp_path / "ref.dcm"
    ds.save_as(source)
    out = tmp_path / "anon.dcm"
    expect_ok(req("anonymize", str(source), output=out))
    result = dcmread(out)
    new = result.ReferencedImageSequence[0].ReferencedSOPInstanceUID
    assert new == result.SOPInstanceUID != ds.SOPInstanceUID
    assert result.ReferencedImageSequence[0].ReferencedSOPClassUID == ds.SOPClassUID  # K: kept


def test_anonymize_refuses_burned_in_candidates(tmp_path):
    out = tmp_path / "sc.dcm"
    expect_error(req("anonymize", "sample:SC_rgb_rle.dcm", output=out), "invalid_request")
    assert not out.exists()


@pytest.mark.parametrize("op", ["from_json", "histogram", "split_multiframe"])
def test_declared_unsupported_ops(op, tmp_path):
    output = {"histogram": None, "split_multiframe": tmp_path / "d"}.get(op, tmp_path / "o.dcm")
    request = req(op, output=output)
    if op == "from_json":
        request["input"] = str(sample("test1.json"))
    expect_error(request, "unsupported_op")
