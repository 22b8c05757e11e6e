"""`batch_anonymize`: the engine over a tree with the batch runner; halves equal the whole."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from conftest import expect_error, expect_ok
from deid_corpus import Planted, write_leak_file
from factories import ROOT, ct_slice, save
from pydicom.uid import generate_uid
from test_deid_leaks import assert_no_leak

KEY = "batch-test-key-0123456789"
OPTIONS = {"key": KEY, "profile_options": ["retain_modified_dates"], "progress": False}


def two_patient_study(folder: Path) -> list[Path]:
    """Six slices: one study of patient P1 split over two acquisitions, and a slice of patient P2."""
    study, series, frame = generate_uid(ROOT), generate_uid(ROOT), generate_uid(ROOT)
    files = []
    for i in range(5):
        ds = ct_slice(
            instance=i + 1,
            study_uid=study,
            series_uid=series,
            seed=i,
            PatientID="P1",
            PatientName="One^Patient",
            FrameOfReferenceUID=frame,
            StudyDate="20240102",
            ContentDate=f"2024010{2 + i}",
        )
        files.append(save(ds, folder / f"s{i}.dcm"))
    files.append(
        save(
            ct_slice(PatientID="P2", PatientName="Two^Patient", StudyDate="20230505", seed=9),
            folder / "s5.dcm",
        )
    )
    return files


def batch(inputs: list[Path] | Path, output: Path, **options) -> dict:
    given = [str(p) for p in inputs] if isinstance(inputs, list) else str(inputs)
    return expect_ok(
        {"op": "batch_anonymize", "input": given, "output": str(output), "options": {**OPTIONS, **options}}
    )


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_half_batches_equal_one_batch(tmp_path: Path) -> None:
    files = two_patient_study(tmp_path / "in")
    whole = batch(files, tmp_path / "whole", workers=2)
    batch(files[:3], tmp_path / "halves", workers=1)
    batch(files[3:], tmp_path / "halves", workers=2)
    assert whole["metadata"]["files_processed"] == 6 and whole["metadata"]["files_failed"] == 0
    expected = tree_bytes(tmp_path / "whole")
    assert sorted(expected) == [f"s{i}_anonymized.dcm" for i in range(6)]
    assert tree_bytes(tmp_path / "halves") == expected
    out = [pydicom.dcmread(tmp_path / "whole" / f"s{i}_anonymized.dcm") for i in range(6)]
    assert len({ds.StudyInstanceUID for ds in out[:5]}) == 1 and len({ds.PatientID for ds in out[:5]}) == 1
    assert out[5].PatientID != out[0].PatientID
    assert len({ds.SOPInstanceUID for ds in out}) == 6


def test_batch_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    files = two_patient_study(tmp_path / "in" / "sub")
    (tmp_path / "in" / "broken.dcm").write_bytes(files[0].read_bytes()[:400])
    (tmp_path / "in" / "readme.txt").write_text("not dicom")
    result = batch(tmp_path / "in", tmp_path / "out")
    meta = result["metadata"]
    assert (meta["files_processed"], meta["files_failed"], meta["files_skipped"]) == (6, 1, 1)
    assert meta["errors"][0]["path"].endswith("broken.dcm") and meta["errors"][0]["code"] == "decode_error"
    assert not (tmp_path / "out" / "broken_anonymized.dcm").exists()
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == [
        f"s{i}_anonymized.dcm" for i in range(6)
    ]
    assert len(result["output_files"]) == 6


def test_batch_leaks_nothing_and_writes_the_mapping(tmp_path: Path) -> None:
    planted = Planted()
    write_leak_file(tmp_path / "in" / "explicit.dcm", planted)
    write_leak_file(tmp_path / "in" / "implicit.dcm", planted, implicit=True)
    mapping = tmp_path / "map.json"
    result = batch(
        tmp_path / "in", tmp_path / "out", profile_options=[], mapping_file=str(mapping), suffix="", workers=2
    )
    assert result["metadata"]["files_processed"] == 2
    assert "results" not in result["metadata"]  # originals never go into the response
    for name in ("explicit.dcm", "implicit.dcm"):
        assert_no_leak(tmp_path / "out" / name, planted)
    report = json.loads(mapping.read_text())
    new = pydicom.dcmread(tmp_path / "out" / "explicit.dcm")
    old = pydicom.dcmread(tmp_path / "in" / "explicit.dcm")
    assert report["uids"][old.SOPInstanceUID] == new.SOPInstanceUID


def test_batch_refuses_existing_outputs_without_overwrite(tmp_path: Path) -> None:
    files = two_patient_study(tmp_path / "in")
    batch(files[:2], tmp_path / "out")
    before = tree_bytes(tmp_path / "out")
    again = expect_ok(
        {
            "op": "batch_anonymize",
            "input": [str(p) for p in files[:2]],
            "output": str(tmp_path / "out"),
            "options": {**OPTIONS, "key": "a-different-key-0123456789"},
        }
    )
    assert again["metadata"]["files_failed"] == 2 and {e["code"] for e in again["metadata"]["errors"]} == {
        "output_exists"
    }
    assert tree_bytes(tmp_path / "out") == before
    expect_error(
        {"op": "batch_anonymize", "input": str(tmp_path / "in"), "output": str(tmp_path / "in" / "out")},
        "invalid_request",
    )
