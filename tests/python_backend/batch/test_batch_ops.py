"""batch_list / batch_validate / batch_decompress / batch_convert through the real dispatcher,
on a messy tree: every good file done, every bad one reported with its code, nothing else written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from batch_trees import build_tree
from conftest import expect_error, expect_ok
from PIL import Image
from pydicom import dcmread


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_tree(tmp_path_factory.mktemp("batch") / "tree")


def _errors(data) -> dict[str, str]:
    return {e["path"]: e["code"] for e in data["metadata"]["errors"]}


def _check_counts(data, tree) -> None:
    meta = data["metadata"]
    assert meta["files_processed"] == len(tree.dicom)
    assert meta["files_failed"] == len(tree.broken)
    assert _errors(data) == {str(p): code for p, code in tree.broken.items()}
    assert meta["files_skipped"] >= len(tree.clutter) + 1  # clutter and the raw data set


def test_batch_list(tree):
    data = expect_ok({"op": "batch_list", "input": str(tree.root), "options": {"workers": 2}})
    _check_counts(data, tree)
    listed = [r["path"] for r in data["metadata"]["results"]]
    assert listed == [str(p) for p in tree.taken if p in tree.dicom]
    by_path = {r["path"]: r for r in data["metadata"]["results"]}
    assert by_path[str(tree.root / "a" / "CT_small.dcm")]["PatientID"] == dcmread(tree.root / "a" / "CT_small.dcm").PatientID
    assert data["stdout"].splitlines() == listed


def test_batch_list_raw_files_when_asked(tree):
    data = expect_ok({"op": "batch_list", "input": str(tree.root / "raw"), "options": {"include_raw": True, "workers": 1}})
    assert [r["PatientID"] for r in data["metadata"]["results"]] == ["RAW001"]


def test_batch_list_takes_a_list_of_files(tree):
    files = [str(tree.root / "a" / "CT_small.dcm"), str(tree.root / "fake.dcm")]
    data = expect_ok({"op": "batch_list", "input": files, "options": {"workers": 1}})
    assert data["metadata"]["files_processed"] == 1
    assert _errors(data) == {files[1]: "not_dicom"}


def test_batch_validate_reports_each_verdict(tree):
    data = expect_ok({"op": "batch_validate", "input": str(tree.root), "options": {"workers": 2}})
    _check_counts(data, tree)
    results = data["metadata"]["results"]
    assert all(isinstance(r["valid"], bool) for r in results)
    assert data["metadata"]["files_valid"] + data["metadata"]["files_invalid"] == len(results)


def test_batch_decompress(tree, tmp_path):
    out = tmp_path / "out"
    data = expect_ok({"op": "batch_decompress", "input": str(tree.root), "output": str(out), "options": {"workers": 2}})
    _check_counts(data, tree)
    written = sorted(Path(p) for p in data["output_files"])
    assert written == sorted(p for p in out.rglob("*") if p.is_file()), "only successful files are written, no temp files"
    source = tree.root / "a" / "scan.IMA"  # JPEG 2000
    target = out / "a" / "scan_decompressed.IMA"
    assert target in written
    result = dcmread(target)
    assert not result.file_meta.TransferSyntaxUID.is_compressed
    assert np.array_equal(result.pixel_array, dcmread(source).pixel_array)
    assert (out / "a" / "b" / "c" / "IMAGE0001_decompressed").is_file()
    assert not list(out.glob("fake*")) and not list(out.glob("truncated*"))


# pydicom's files in every native encoding the op must turn into Explicit VR Little Endian.
NATIVE_INPUTS = ("MR_small_implicit.dcm", "MR_small_bigendian.dcm", "ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm", "rtstruct.dcm")


def test_batch_decompress_writes_explicit_little_endian_from_every_native_encoding(tmp_path):
    """Implicit VR, big endian, deflated and raw data sets without a file meta all come out as
    the op promises: Explicit VR Little Endian, same SOP Instance UID, same pixel values."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

    source = tmp_path / "in"
    source.mkdir()
    for name in NATIVE_INPUTS:
        (source / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    deflated = dcmread(get_testdata_file("CT_small.dcm"))
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated.save_as(source / "deflated.dcm", enforce_file_format=True)
    out = tmp_path / "out"
    data = expect_ok({"op": "batch_decompress", "input": str(source), "output": str(out), "options": {"workers": 1, "suffix": ""}})
    assert data["metadata"]["files_failed"] == 0, data["metadata"]["errors"]
    assert sorted(Path(p).name for p in data["output_files"]) == sorted([*NATIVE_INPUTS, "deflated.dcm"])
    for written in map(Path, data["output_files"]):
        result, original = dcmread(written), dcmread(source / written.name, force=True)
        assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian, written.name
        assert result.SOPInstanceUID == original.SOPInstanceUID
        if "PixelData" in original:
            assert np.array_equal(result.pixel_array, original.pixel_array), written.name


def test_batch_decompress_output_that_fails_verification_is_removed(tree, tmp_path, monkeypatch):
    """A written file the checks refuse is that file's backend_error, and nothing of it stays."""
    from dicom_hub.adapters import verify

    monkeypatch.setattr(verify, "verify_file", lambda path, **_: f"{path.name} is a stand-in for a broken output")
    out = tmp_path / "out"
    data = expect_ok({"op": "batch_decompress", "input": str(tree.root / "series"), "output": str(out), "options": {"workers": 1}})
    assert data["metadata"]["files_processed"] == 0 and data["output_files"] == []
    assert {e["code"] for e in data["metadata"]["errors"]} == {"backend_error"}
    assert all("fails verification" in e["message"] and "it was removed" in e["message"] for e in data["metadata"]["errors"])
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_batch_decompress_flat_and_never_overwrites(tree, tmp_path):
    out = tmp_path / "flat"
    request = {"op": "batch_decompress", "input": str(tree.root / "series"), "output": str(out), "options": {"preserve_tree": False, "suffix": "", "workers": 1}}
    first = expect_ok(request)
    assert first["metadata"]["files_processed"] == 3
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    # The same request again: its outputs are already there, byte for byte; counted, not rewritten.
    again = expect_ok(request)
    assert (again["metadata"]["files_processed"], again["metadata"]["files_failed"], again["metadata"]["files_resumed"]) == (3, 0, 3)
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # An output that differs from what the request writes is never replaced without overwrite.
    changed = sorted(out.iterdir())[0]
    changed.write_bytes(changed.read_bytes() + b"\0\0")
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    clash = expect_ok(request)
    assert [(e["path"], e["code"]) for e in clash["metadata"]["errors"]] == [(str(tree.root / "series" / changed.name), "output_exists")]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert sorted(p.name for p in out.iterdir()) == sorted(stamps_name.name for stamps_name in stamps)  # no temp file left
    replaced = expect_ok({**request, "options": {**request["options"], "overwrite": True}})
    assert replaced["metadata"]["files_processed"] == 3


def test_write_errors_are_per_file(tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b").write_text("a file where the folder b/ of the mirrored tree should go")
    data = expect_ok({"op": "batch_decompress", "input": str(tree.root / "a"), "output": str(out), "options": {"workers": 2}})
    deep = sorted(str(p) for p in tree.dicom if (tree.root / "a" / "b") in p.parents)
    assert len(deep) == 2
    assert sorted(e["path"] for e in data["metadata"]["errors"]) == deep
    assert {e["code"] for e in data["metadata"]["errors"]} == {"output_error"}
    assert data["metadata"]["files_processed"] == 4 and len(data["output_files"]) == 4


def test_batch_convert_to_jpeg_with_to_image_options(tree, tmp_path):
    out = tmp_path / "images"
    options = {"format": "jpeg", "window_center": 40, "window_width": 400, "quality": 80, "workers": 2}
    data = expect_ok({"op": "batch_convert", "input": str(tree.root / "series"), "output": str(out), "options": options})
    assert data["metadata"]["files_processed"] == 3
    for path in data["output_files"]:
        assert path.endswith(".jpg")
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (16, 16)
    # The same request for one file through to_image gives the same pixels.
    single = tmp_path / "single.jpg"
    source = tree.root / "series" / "slice000.dcm"
    expect_ok({"op": "to_image", "input": str(source), "output": str(single), "options": {k: v for k, v in options.items() if k != "workers"}})
    with Image.open(single) as a, Image.open(out / "slice000.jpg") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_batch_convert_reports_bad_files(tree, tmp_path):
    data = expect_ok({"op": "batch_convert", "input": str(tree.root), "output": str(tmp_path / "png"), "options": {"workers": 2}})
    _check_counts(data, tree)
    assert all(p.endswith(".png") for p in data["output_files"])


def test_batch_convert_refuses_half_a_window_once(tree, tmp_path):
    expect_error({"op": "batch_convert", "input": str(tree.root), "output": str(tmp_path / "png"), "options": {"window_center": 40}}, "invalid_request")
    assert not (tmp_path / "png").exists()


def test_output_inside_the_input_is_refused(tree):
    expect_error({"op": "batch_decompress", "input": str(tree.root), "output": str(tree.root / "out")}, "invalid_request")
