"""modify_tags: set/create/delete by keyword or (gggg,eeee), values checked against the VR, input untouched."""

from __future__ import annotations

import hashlib

import pytest
from conftest import expect_error, expect_ok, sample
from factories import ct_slice, save
from pydicom import dcmread

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def modify(src, out, **options):
    return expect_ok({"op": "modify_tags", "input": str(src), "output": str(out), "options": options})


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_set_create_and_delete(tmp_path):
    src = save(ct_slice(), tmp_path / "in.dcm")
    before = digest(src)
    data = modify(
        src,
        tmp_path / "out.dcm",
        set={"PatientName": "Doe^Jane", "(0008,1030)": "Head CT", "PixelSpacing": [0.25, "0.3"], "SeriesNumber": 7, "InstitutionName": None},
        delete=["PatientBirthDate", "(0010,1010)", "OperatorsName"],
    )
    out = dcmread(tmp_path / "out.dcm")
    assert out.PatientName == "Doe^Jane"
    assert out.StudyDescription == "Head CT"
    assert [float(v) for v in out.PixelSpacing] == [0.25, 0.3]
    assert out.SeriesNumber == 7
    assert "InstitutionName" in out and out["InstitutionName"].is_empty
    assert "PatientBirthDate" not in out
    meta = data["metadata"]
    assert meta["changed"] == ["(0010,0010)", "(0028,0030)", "(0020,0011)"]
    assert meta["created"] == ["(0008,1030)", "(0008,0080)"]
    assert meta["deleted"] == ["(0010,0030)"]
    assert meta["not_present"] == ["(0010,1010)", "(0008,1070)"]
    assert digest(src) == before  # the input is never touched
    assert (out.pixel_array == dcmread(src).pixel_array).all()


def test_numbers_and_uncommon_vrs(tmp_path):
    src = save(ct_slice(), tmp_path / "in.dcm")
    modify(
        src,
        tmp_path / "out.dcm",
        set={"Rows": 16, "SliceThickness": 1.123456789012345, "FrameIncrementPointer": "(0018,1063)", "DiffusionBValue": 1000, "SOPInstanceUID": "1.2.3.4.5"},
    )
    out = dcmread(tmp_path / "out.dcm")
    assert float(out.SliceThickness) == pytest.approx(1.123456789012345, rel=1e-9)
    assert len(str(out["SliceThickness"].value.original_string or out.SliceThickness)) <= 16
    assert out.FrameIncrementPointer == 0x00181063
    assert out.DiffusionBValue == 1000.0 and out["DiffusionBValue"].VR == "FD"
    assert out.SOPInstanceUID == "1.2.3.4.5"
    assert out.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"  # kept consistent


def test_private_tags_need_their_vr(tmp_path):
    src = save(ct_slice(), tmp_path / "in.dcm")
    err = expect_error({"op": "modify_tags", "input": str(src), "output": str(tmp_path / "x.dcm"), "options": {"set": {"(0011,1010)": "x"}}}, "invalid_request")
    assert "options.vr" in err["error"]["hint"]
    modify(src, tmp_path / "out.dcm", set={"(0011,0010)": "DICOMHUB", "(0011,1010)": "private text"}, vr={"(0011,1010)": "LO"})
    out = dcmread(tmp_path / "out.dcm")
    assert out[0x00111010].VR == "LO" and out[0x00111010].value == "private text"


@pytest.mark.parametrize(
    ("tag", "value", "vr"),
    [
        ("Rows", 70000, "US"),
        ("Rows", "16", "US"),
        ("Rows", -1, "US"),
        ("PatientName", 12, "PN"),
        ("Modality", "ct", "CS"),
        ("StationName", "A" * 17, "SH"),
        ("StudyDate", "2024-01-02", "DA"),
        ("SeriesInstanceUID", "1.2.03", "UI"),
        ("SliceThickness", "thick", "DS"),
        ("SeriesNumber", 1.5, "IS"),
        ("PixelSpacing", [1, 2, 3], "DS"),
        ("Modality", ["CT", "MR"], "CS"),
        ("FrameIncrementPointer", "PixelData", "AT"),
        ("ReferencedImageSequence", "x", "SQ"),
        ("(0009,1001)", 3, "LO"),
    ],
)
def test_bad_values_name_tag_vr_and_value(tmp_path, tag, value, vr):
    src = save(ct_slice(), tmp_path / "in.dcm")
    options = {"set": {tag: value}, "vr": {"(0009,1001)": "LO"}}
    err = expect_error({"op": "modify_tags", "input": str(src), "output": str(tmp_path / "x.dcm"), "options": options}, "invalid_request")
    message = err["error"]["message"]
    assert tag in message and f"VR {vr}" in message and repr(value)[:20] in message
    assert not (tmp_path / "x.dcm").exists()


def test_request_errors(tmp_path):
    src = save(ct_slice(), tmp_path / "in.dcm")
    out = str(tmp_path / "x.dcm")
    expect_error({"op": "modify_tags", "input": str(src), "output": out, "options": {"set": {"NoSuchKeyword": "x"}}}, "invalid_request")
    expect_error({"op": "modify_tags", "input": str(src), "output": out, "options": {"set": {"PatientID": "1"}, "delete": ["PatientID"]}}, "invalid_request")
    expect_error({"op": "modify_tags", "input": str(src), "output": out, "options": {}}, "invalid_request")
    expect_error({"op": "modify_tags", "input": str(src), "output": out, "options": {"vr": {"(0011,1010)": "L0"}}}, "invalid_request")
    expect_error({"op": "modify_tags", "input": str(src), "output": out, "options": {"set": {"TransferSyntaxUID": "1.2.840.10008.1.2"}}}, "invalid_request")
    expect_error({"op": "modify_tags", "input": str(src), "options": {"set": {"PatientID": "1"}}}, "invalid_request")  # output required


def test_output_rules(tmp_path):
    src = save(ct_slice(), tmp_path / "in.dcm")
    before = digest(src)
    options = {"set": {"PatientID": "NEW"}}
    expect_error({"op": "modify_tags", "input": str(src), "output": str(src), "options": options}, "invalid_request")
    assert digest(src) == before
    (tmp_path / "exists.dcm").write_bytes(b"keep me")
    expect_error({"op": "modify_tags", "input": str(src), "output": str(tmp_path / "exists.dcm"), "options": options}, "output_exists")
    assert (tmp_path / "exists.dcm").read_bytes() == b"keep me"
    expect_ok({"op": "modify_tags", "input": str(src), "output": str(tmp_path / "exists.dcm"), "options": {**options, "overwrite": True}})
    assert dcmread(tmp_path / "exists.dcm").PatientID == "NEW"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_bad_inputs(tmp_path):
    options = {"set": {"PatientID": "NEW"}}
    (tmp_path / "text.dcm").write_text("plain text, not DICOM\n" * 10)
    expect_error({"op": "modify_tags", "input": str(tmp_path / "text.dcm"), "output": str(tmp_path / "o1.dcm"), "options": options}, "not_dicom")
    expect_error({"op": "modify_tags", "input": "sample:rtplan_truncated.dcm", "output": str(tmp_path / "o2.dcm"), "options": options}, "decode_error")
    expect_error({"op": "modify_tags", "input": str(tmp_path / "none.dcm"), "output": str(tmp_path / "o3.dcm"), "options": options}, "input_not_found")
    expect_error({"op": "modify_tags", "input": str(tmp_path), "output": str(tmp_path / "o4.dcm"), "options": options}, "invalid_request")
    assert not any((tmp_path / f"o{i}.dcm").exists() for i in range(1, 5))


def test_bundled_sample_keeps_everything_else(tmp_path):
    modify("sample:CT_small.dcm", tmp_path / "out.dcm", set={"PatientID": "ANON"})
    original, out = dcmread(sample("CT_small.dcm")), dcmread(tmp_path / "out.dcm")
    assert out.PatientID == "ANON"
    assert {e.tag for e in original} == {e.tag for e in out}
    assert out.PixelData == original.PixelData
