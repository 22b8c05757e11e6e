"""to_json / from_json: the DICOM JSON Model round trip keeps every element of every bundled file."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from conftest import expect_error, expect_ok, run_request, sample
from dicom_hub.contract.files import sample_names
from factories import ct_slice, save, with_nested_sequences, with_uncommon_vrs
from pydicom import Dataset, dcmread
from pydicom.multival import MultiValue

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _strictly_readable(name: str) -> bool:
    """pydicom reads it as a Part 10 file (no force)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            list(dcmread(sample(name)).iterall())
        return True
    except Exception:
        return False


def _values_equal(a, b) -> bool:
    if isinstance(a, MultiValue | list | tuple) or isinstance(b, MultiValue | list | tuple):
        a_items = list(a) if isinstance(a, MultiValue | list | tuple) else [a]
        b_items = list(b) if isinstance(b, MultiValue | list | tuple) else [b]
        return len(a_items) == len(b_items) and all(_values_equal(x, y) for x, y in zip(a_items, b_items, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return (a in (None, "") and b in (None, "")) or math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0)
    if isinstance(a, bytes | bytearray) and isinstance(b, bytes | bytearray):
        return bytes(a).rstrip(b"\0") == bytes(b).rstrip(b"\0")  # even-length padding is not content
    if a in (None, "", b"") and b in (None, "", b""):
        return True
    return str(a).rstrip(" \0") == str(b).rstrip(" \0")


def assert_same_elements(original, copy, where: str = "", *, group_lengths: bool = True) -> None:
    """Every element of `original` is in `copy` with the same VR and an equal value (recursively).

    `group_lengths=False` skips the retired (gggg,0000) elements, which pydicom never writes to a
    file (PS3.5 7.2); the JSON document itself keeps them.
    """
    for elem in original:
        tag = f"{where}({elem.tag.group:04X},{elem.tag.element:04X})"
        if not group_lengths and elem.tag.element == 0:  # (0002,0000) is recomputed on write
            continue
        assert elem.tag in copy, f"{tag} {elem.keyword} lost"
        other = copy[elem.tag]
        if (elem.VR, other.VR) == ("SQ", "UN") and elem.tag.is_private:
            continue  # implicit VR cannot say a private element is a sequence: the file reads it back as UN
        assert other.VR == elem.VR, f"{tag}: VR {elem.VR} became {other.VR}"
        if elem.VR == "SQ":
            assert len(other.value) == len(elem.value), f"{tag}: item count changed"
            for index, (a, b) in enumerate(zip(elem.value, other.value, strict=True)):
                assert_same_elements(a, b, f"{tag}[{index}].", group_lengths=group_lengths)
        else:
            assert _values_equal(elem.value, other.value), f"{tag} {elem.keyword}: {elem.value!r} != {other.value!r}"


@pytest.mark.parametrize("name", sample_names())
def test_every_bundled_file_round_trips(name, tmp_path):
    data = run_request({"op": "to_json", "input": f"sample:{name}", "output": str(tmp_path / "a.json"), "options": {"include_file_meta": True}})
    if not data["ok"]:
        # Allowed failures: not DICOM at all, cut short, or a value the JSON Model cannot carry.
        code, message = data["error"]["code"], data["error"]["message"]
        assert code in ("not_dicom", "decode_error"), data["error"]
        if code == "not_dicom":
            assert not _strictly_readable(name)
        else:
            assert "truncated" in message or " IS " in message or " DS " in message, message
        return
    original = dcmread(sample(name), force=True)  # what the backend read (raw data sets included)
    document = Dataset.from_json((tmp_path / "a.json").read_text())
    assert_same_elements(original, document)
    assert_same_elements(original.file_meta, document)
    expect_ok({"op": "from_json", "input": str(tmp_path / "a.json"), "output": str(tmp_path / "b.dcm")})
    copy = dcmread(tmp_path / "b.dcm")
    assert_same_elements(original, copy, group_lengths=False)
    assert_same_elements(original.file_meta, copy.file_meta, group_lengths=False)


def test_known_failures_are_named():
    for name in ("MR_truncated.dcm", "rtplan_truncated.dcm"):
        assert "truncated" in expect_error({"op": "to_json", "input": f"sample:{name}"}, "decode_error")["error"]["message"]
    assert "(0028,0008) NumberOfFrames IS" in expect_error({"op": "to_json", "input": "sample:badVR.dcm"}, "decode_error")["error"]["message"]


def test_most_bundled_files_round_trip():
    failures = [n for n in sample_names() if not run_request({"op": "to_json", "input": f"sample:{n}", "options": {"bulk_data": "omit"}})["ok"]]
    assert len(failures) <= 5, failures


def test_synthetic_nested_and_uncommon_vrs_round_trip(tmp_path):
    ds = with_uncommon_vrs(with_nested_sequences(ct_slice(), depth=4))
    src = save(ds, tmp_path / "src.dcm")
    expect_ok({"op": "to_json", "input": str(src), "output": str(tmp_path / "a.json"), "options": {"indent": 2}})
    assert (tmp_path / "a.json").read_text().startswith("{\n  ")
    expect_ok({"op": "from_json", "input": str(tmp_path / "a.json"), "output": str(tmp_path / "b.dcm")})
    copy = dcmread(tmp_path / "b.dcm")
    assert_same_elements(dcmread(src), copy)
    item = copy.ReferencedImageSequence[0]
    for _ in range(3):
        item = item.ReferencedImageSequence[0]
    assert "ReferencedImageSequence" not in item


def test_without_output_the_document_is_in_metadata():
    data = expect_ok({"op": "to_json", "input": "sample:CT_small.dcm"})
    doc = data["metadata"]["dataset"]
    assert doc["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "CompressedSamples^CT1"}]}
    assert doc["00280010"] == {"vr": "US", "Value": [128]}
    assert "InlineBinary" in doc["7FE00010"]
    assert not any(tag.startswith("0002") for tag in doc)  # group 0002 only on request
    assert data["output_files"] == []


def test_include_file_meta_and_omit_bulk_data():
    data = expect_ok({"op": "to_json", "input": "sample:CT_small.dcm", "options": {"include_file_meta": True, "bulk_data": "omit"}})
    doc = data["metadata"]["dataset"]
    assert doc["00020010"]["Value"] == ["1.2.840.10008.1.2.1"]
    assert "7FE00010" not in doc
    assert "7FE00010" in data["metadata"]["omitted"]


def test_from_json_uses_the_transfer_syntax_option(tmp_path):
    doc = expect_ok({"op": "to_json", "input": "sample:MR_small.dcm", "options": {"bulk_data": "inline"}})["metadata"]["dataset"]
    (tmp_path / "mr.json").write_text(json.dumps(doc))
    expect_ok({"op": "from_json", "input": str(tmp_path / "mr.json"), "output": str(tmp_path / "mr.dcm"), "options": {"transfer_syntax": "1.2.840.10008.1.2"}})
    ds = dcmread(tmp_path / "mr.dcm")
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.pixel_array == dcmread(sample("MR_small.dcm")).pixel_array).all()


def test_from_json_bulk_data_uri_is_reported(tmp_path):
    doc = expect_ok({"op": "to_json", "input": "sample:CT_small.dcm"})["metadata"]["dataset"]
    doc["7FE00010"] = {"vr": "OW", "BulkDataURI": "http://example.org/bulk/1"}
    (tmp_path / "ct.json").write_text(json.dumps(doc))
    data = expect_ok({"op": "from_json", "input": str(tmp_path / "ct.json"), "output": str(tmp_path / "ct.dcm")})
    assert any("7FE00010" in w for w in data["metadata"]["warnings"])
    assert dcmread(tmp_path / "ct.dcm")["PixelData"].is_empty


def test_from_json_rejects_unknown_transfer_syntax(tmp_path):
    doc = expect_ok({"op": "to_json", "input": "sample:CT_small.dcm", "options": {"bulk_data": "omit"}})["metadata"]["dataset"]
    (tmp_path / "ct.json").write_text(json.dumps(doc))
    data = expect_error({"op": "from_json", "input": str(tmp_path / "ct.json"), "output": str(tmp_path / "x.dcm"), "options": {"transfer_syntax": "1.2.3.4"}}, "invalid_request")
    assert "1.2.3.4" in data["error"]["message"]
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.parametrize("text", ["not json at all", "[1, 2, 3]", '{"00100010": {"vr": "XX", "Value": ["a"]}}'])
def test_from_json_bad_documents(tmp_path, text):
    (tmp_path / "bad.json").write_text(text)
    expect_error({"op": "from_json", "input": str(tmp_path / "bad.json"), "output": str(tmp_path / "x.dcm")}, "decode_error")
    assert not (tmp_path / "x.dcm").exists()


def test_to_json_bad_inputs(tmp_path):
    (tmp_path / "text.dcm").write_text("hello, this is not DICOM\n" * 10)
    expect_error({"op": "to_json", "input": str(tmp_path / "text.dcm")}, "not_dicom")
    expect_error({"op": "to_json", "input": str(tmp_path / "missing.dcm")}, "input_not_found")
    expect_error({"op": "to_json", "input": str(tmp_path)}, "invalid_request")
    expect_error({"op": "to_json", "input": "sample:rtplan_truncated.dcm"}, "decode_error")
    (tmp_path / "out.json").write_text("{}")
    expect_error({"op": "to_json", "input": "sample:CT_small.dcm", "output": str(tmp_path / "out.json")}, "output_exists")
    assert (tmp_path / "out.json").read_text() == "{}"
    expect_ok({"op": "to_json", "input": "sample:CT_small.dcm", "output": str(tmp_path / "out.json"), "options": {"overwrite": True}})
    assert json.loads((tmp_path / "out.json").read_text())["00080060"]["Value"] == ["CT"]
