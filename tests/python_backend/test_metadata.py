"""info and dump: every bundled file gets an answer; synthetic data shows the values and the nesting."""

from __future__ import annotations

import pytest
from conftest import expect_error, expect_ok, run_request
from dicom_hub.contract.files import sample_names
from factories import ct_slice, save, with_nested_sequences, with_uncommon_vrs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

READ_ERRORS = ("not_dicom", "decode_error")


@pytest.mark.parametrize("op", ["info", "dump", "to_json"])
@pytest.mark.parametrize("name", sample_names())
def test_every_bundled_file_answers(op, name):
    data = run_request({"op": op, "input": f"sample:{name}"})
    if not data["ok"]:
        assert data["error"]["code"] in READ_ERRORS, data["error"]
        assert data["error"]["hint"]
    elif op == "info":
        assert set(data["metadata"]) >= {"patient", "study", "series", "image", "equipment", "file"}
    elif op == "dump":
        assert data["metadata"]["element_count"] == len(data["metadata"]["elements"]) > 0
        assert data["stdout"].count("\n") >= data["metadata"]["element_count"]


def test_bundled_samples_that_must_read():
    """The common samples are real answers, not tolerated failures."""
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "rtstruct.dcm", "ExplVR_BigEndNoMeta.dcm"):
        expect_ok({"op": "info", "input": f"sample:{name}"})
        expect_ok({"op": "dump", "input": f"sample:{name}"})


def test_info_values_of_a_synthetic_slice(tmp_path):
    ds = ct_slice(rows=12, cols=10, position=(1.5, -2.0, 30.25), spacing=(0.75, 0.5))
    meta = expect_ok({"op": "info", "input": str(save(ds, tmp_path / "s.dcm"))})["metadata"]
    assert meta["patient"]["PatientName"] == "Synthetic^Patient"
    assert meta["series"]["Modality"] == "CT"
    assert meta["series"]["SeriesInstanceUID"] == ds.SeriesInstanceUID
    assert meta["image"]["Rows"] == 12 and meta["image"]["Columns"] == 10
    assert meta["image"]["PixelSpacing"] == ["0.75", "0.5"]
    assert [float(v) for v in meta["image"]["ImagePositionPatient"]] == [1.5, -2.0, 30.25]
    assert meta["file"]["transfer_syntax"] == "1.2.840.10008.1.2.1"


def test_dump_shows_nested_sequences_and_uncommon_vrs(tmp_path):
    src = save(with_uncommon_vrs(with_nested_sequences(ct_slice(), depth=3)), tmp_path / "n.dcm")
    data = expect_ok({"op": "dump", "input": str(src)})
    elements = data["metadata"]["elements"]
    deepest = max(e["depth"] for e in elements)
    assert deepest == 3  # ReferencedImageSequence nested three items deep
    vrs = {e["vr"] for e in elements}
    assert {"AT", "FD", "UR", "UT", "SQ", "LO"} <= vrs
    assert "(0011,1010) LO" in data["stdout"] and "private value" in data["stdout"]
    assert not any(e["tag"] == "7FE00010" for e in elements)  # pixel data only on request

    top = expect_ok({"op": "dump", "input": str(src), "options": {"max_depth": 0}})["metadata"]["elements"]
    assert max(e["depth"] for e in top) == 0
    with_pixels = expect_ok({"op": "dump", "input": str(src), "options": {"include_pixel_data": True}})["metadata"]["elements"]
    pixel = next(e for e in with_pixels if e["tag"] == "7FE00010")
    assert pixel["value"] == "<OW binary, 512 bytes>"


def test_dump_cuts_long_values_and_writes_a_file(tmp_path):
    ds = ct_slice()
    ds.StudyDescription = "x" * 60
    src = save(ds, tmp_path / "s.dcm")
    data = expect_ok({"op": "dump", "input": str(src), "output": str(tmp_path / "dump.txt"), "options": {"max_value_length": 20}})
    shown = next(e["value"] for e in data["metadata"]["elements"] if e["keyword"] == "StudyDescription")
    assert shown == "x" * 17 + "..."
    assert data["stdout"] == "" and "StudyDescription: " + "x" * 17 + "..." in (tmp_path / "dump.txt").read_text()


@pytest.mark.parametrize("op", ["info", "dump"])
def test_bad_inputs(tmp_path, op):
    (tmp_path / "text.dcm").write_text("this is text, not DICOM\n" * 10)
    expect_error({"op": op, "input": str(tmp_path / "text.dcm")}, "not_dicom")
    expect_error({"op": op, "input": str(tmp_path / "missing.dcm")}, "input_not_found")
    expect_error({"op": op, "input": str(tmp_path)}, "invalid_request")
    expect_error({"op": op, "input": "sample:MR_truncated.dcm"}, "decode_error")
    expect_error({"op": op, "input": "sample:rtplan_truncated.dcm"}, "decode_error")
    expect_error({"op": op, "input": "sample:no_such_sample.dcm"}, "input_not_found")


def test_dump_output_rules(tmp_path):
    (tmp_path / "d.txt").write_text("old")
    expect_error({"op": "dump", "input": "sample:CT_small.dcm", "output": str(tmp_path / "d.txt")}, "output_exists")
    assert (tmp_path / "d.txt").read_text() == "old"
    src = save(ct_slice(), tmp_path / "s.dcm")
    expect_error({"op": "dump", "input": str(src), "output": str(src)}, "invalid_request")
    expect_error({"op": "info", "input": "sample:CT_small.dcm", "options": {"depth": 2}}, "invalid_request")


def test_truncation_is_detected_but_deflated_files_are_not_mistaken_for_truncated():
    # Offsets in a deflated file point into the inflated stream, not the file on disk.
    data = expect_ok({"op": "info", "input": "sample:image_dfl.dcm"})
    assert data["metadata"]["image"]["Rows"] == 512
    assert data["metadata"]["file"]["transfer_syntax"] == "1.2.840.10008.1.2.1.99"
    error = expect_error({"op": "info", "input": "sample:MR_truncated.dcm"}, "decode_error")
    assert "truncated" in error["error"]["message"]
