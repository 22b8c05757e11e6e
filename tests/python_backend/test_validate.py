"""validate: each structural problem is found, named and located; an invalid file is still ok: true."""

from __future__ import annotations

import pytest
from conftest import expect_error, expect_ok, run_request
from dicom_hub.contract.files import sample_names
from factories import ct_slice, multiframe, save

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def report(path, **options):
    return expect_ok({"op": "validate", "input": str(path), "options": options})["metadata"]


def findings(result, kind="errors"):
    return [(f["check"], f["tag"]) for f in result[kind]]


def test_a_clean_synthetic_slice_is_valid(tmp_path):
    result = report(save(ct_slice(), tmp_path / "ok.dcm"))
    assert result == {"valid": True, "errors": [], "warnings": []}


def test_a_clean_multiframe_is_valid(tmp_path):
    assert report(save(multiframe(frames=3), tmp_path / "mf.dcm"))["valid"]


def test_short_pixel_data_is_an_error(tmp_path):
    ds = ct_slice(rows=16, cols=16)
    ds.PixelData = ds.PixelData[:-4]
    result = report(save(ds, tmp_path / "short.dcm"))
    assert not result["valid"]
    assert findings(result) == [("pixel_data", "(7FE0,0010)")]
    assert "508 bytes" in result["errors"][0]["message"] and "512" in result["errors"][0]["message"]


def test_wrong_number_of_frames_is_an_error(tmp_path):
    ds = multiframe(frames=4)
    ds.NumberOfFrames = 5
    result = report(save(ds, tmp_path / "mf.dcm"))
    assert ("pixel_data", "(7FE0,0010)") in findings(result)
    assert "5 frame(s)" in result["errors"][0]["message"]


def test_excess_pixel_data_is_a_warning_and_strict_makes_it_count(tmp_path):
    ds = ct_slice()
    ds.PixelData = ds.PixelData + b"\0" * 8
    path = save(ds, tmp_path / "long.dcm")
    result = report(path)
    assert result["valid"] and findings(result, "warnings") == [("pixel_data", "(7FE0,0010)")]
    assert not report(path, strict=True)["valid"]


def test_native_bytes_under_a_compressed_syntax(tmp_path):
    path = save(ct_slice(), tmp_path / "rle.dcm")
    data = path.read_bytes()  # pydicom refuses to write this, so patch the meta: same length, RLE Lossless
    assert data.count(b"1.2.840.10008.1.2.1\0") == 1
    path.write_bytes(data.replace(b"1.2.840.10008.1.2.1\0", b"1.2.840.10008.1.2.5\0"))
    result = report(path)
    assert ("pixel_data", "(7FE0,0010)") in findings(result)


def test_missing_and_malformed_uids(tmp_path):
    ds = ct_slice()
    del ds.StudyInstanceUID
    ds.SeriesInstanceUID = "1.2.03.4"  # leading zero in a component
    ds.FrameOfReferenceUID = "1." + "2" * 70  # longer than 64
    result = report(save(ds, tmp_path / "uids.dcm"))
    got = findings(result)
    assert ("required_uid", "(0020,000D)") in got
    assert ("value", "(0020,000E)") in got
    assert ("value", "(0020,0052)") in got
    assert not result["valid"]


def test_vr_length_characters_and_vm(tmp_path):
    ds = ct_slice()
    ds.StationName = "A" * 17  # SH holds 16
    ds.Modality = "ct"  # CS: upper case only
    ds.PixelSpacing = [0.5, 0.5, 0.5]  # VM 2
    result = report(save(ds, tmp_path / "vr.dcm"))
    got = findings(result)
    assert ("value", "(0008,1010)") in got
    assert ("value", "(0008,0060)") in got
    assert ("vm", "(0028,0030)") in got
    messages = " ".join(e["message"] for e in result["errors"])
    assert "StationName" in messages and "PixelSpacing" in messages


def test_nested_values_are_checked_with_their_path(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = ct_slice()
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.x"
    ds.ReferencedImageSequence = Sequence([item])
    got = findings(report(save(ds, tmp_path / "nested.dcm")))
    assert ("value", "(0008,1140)[0].(0008,1155)") in got


def test_file_meta_problems(tmp_path):
    ds = ct_slice()
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    ds.save_as(tmp_path / "meta.dcm", implicit_vr=False, little_endian=True)
    result = report(tmp_path / "meta.dcm")
    got = findings(result)
    assert ("file_meta", "(0002,0003)") in got
    assert ("transfer_syntax", "(0002,0010)") in got


def test_no_preamble_and_no_meta(tmp_path):
    ds = ct_slice()
    del ds.file_meta
    ds.save_as(tmp_path / "raw.dcm", implicit_vr=True, little_endian=True)
    got = findings(report(tmp_path / "raw.dcm"))
    assert ("preamble", None) in got and ("file_meta", None) in got


def test_bundled_known_problems():
    rtdose = report_sample("rtdose.dcm")
    assert ("value", "(300C,0002)[0].(0008,1155)") in findings(rtdose)  # '...0123...' has a leading zero
    bad = report_sample("badVR.dcm")
    assert ("value", "(0028,0008)") in findings(bad)
    assert report_sample("CT_small.dcm")["valid"]
    assert report_sample("JPEG2000.dcm")["valid"]


def report_sample(name):
    return expect_ok({"op": "validate", "input": f"sample:{name}"})["metadata"]


@pytest.mark.parametrize("name", sample_names())
def test_every_bundled_file_gets_a_report_or_a_read_error(name):
    data = run_request({"op": "validate", "input": f"sample:{name}"})
    if data["ok"]:
        result = data["metadata"]
        assert result["valid"] == (not result["errors"])
        assert all(f["message"] for f in result["errors"] + result["warnings"])
    else:
        assert data["error"]["code"] in ("not_dicom", "decode_error"), data["error"]


def test_unreadable_inputs(tmp_path):
    (tmp_path / "text.dcm").write_text("not a DICOM file\n" * 20)
    expect_error({"op": "validate", "input": str(tmp_path / "text.dcm")}, "not_dicom")
    expect_error({"op": "validate", "input": "sample:MR_truncated.dcm"}, "decode_error")
    expect_error({"op": "validate", "input": "sample:rtplan_truncated.dcm"}, "decode_error")
    expect_error({"op": "validate", "input": str(tmp_path / "nope.dcm")}, "input_not_found")
    expect_error({"op": "validate", "input": str(tmp_path)}, "invalid_request")
