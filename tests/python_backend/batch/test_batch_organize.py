"""organize: folders from header values, sanitized against hostile values, never overwriting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from batch_trees import build_tree
from conftest import expect_error, expect_ok
from dicom_hub.python_backend.batch.organize import sanitize_name
from factories import ct_slice, save
from pydicom import dcmread


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "tree")


def _inside(path: Path, folder: Path) -> bool:
    return folder.resolve() in path.resolve().parents


def test_by_series_copies_every_good_file_once(tree, tmp_path):
    out = tmp_path / "out"
    data = expect_ok({"op": "organize", "input": str(tree.root), "output": str(out), "options": {"by": "series", "workers": 2}})
    meta = data["metadata"]
    assert meta["files_processed"] == len(tree.dicom)
    assert {e["path"]: e["code"] for e in meta["errors"]} == {str(p): c for p, c in tree.broken.items()}
    for written in map(Path, data["output_files"]):
        ds = dcmread(written, stop_before_pixels=True)
        assert written.relative_to(out).parts[:3] == (ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert all(p.exists() for p in tree.dicom), "copy leaves the sources"


def test_template_with_format_spec(tree, tmp_path):
    out = tmp_path / "out"
    template = "{PatientID}/{StudyDate}_{StudyInstanceUID}/{SeriesNumber:04d}_{Modality}"
    data = expect_ok({"op": "organize", "input": str(tree.root / "series"), "output": str(out), "options": {"by": template, "workers": 1}})
    ds = dcmread(tree.root / "series" / "slice000.dcm")
    folder = out / "SYN001" / f"20240102_{ds.StudyInstanceUID}" / "0001_CT"
    assert sorted(map(Path, data["output_files"])) == [folder / f"slice{i:03d}.dcm" for i in range(3)]


def test_hostile_values_cannot_escape_or_hide(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    save(ct_slice(PatientID="../../x", StudyInstanceUID="../../x", SeriesDescription="a/b\\c\x01d", PatientName="..", Modality="."), src / "evil.dcm")
    template = "{PatientID}/{StudyInstanceUID}/{SeriesDescription}/{PatientName}/{Modality}"
    data = expect_ok({"op": "organize", "input": str(src), "output": str(out), "options": {"by": template, "workers": 1}})
    (written,) = map(Path, data["output_files"])
    assert _inside(written, out)
    # Sanitized by hand: separators and controls become "_", trailing dots go, leading dots become "_",
    # an empty name becomes "_" (so "." and ".." never survive).
    assert written.relative_to(out).parts == ("___.._x", "___.._x", "a_b_c_d", "_", "_", "evil.dcm")
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_names_are_bounded_and_stay_distinct():
    long_a, long_b = "A" * 300 + "1", "A" * 300 + "2"
    assert len(sanitize_name(long_a)) <= 128 and len(sanitize_name(long_a).encode()) <= 240
    assert sanitize_name(long_a) != sanitize_name(long_b)
    assert len(sanitize_name("é" * 200).encode()) <= 240
    assert sanitize_name("") == "_" and sanitize_name("...") == "_"


@pytest.mark.parametrize("template", ["{NotAKeyword}", "{PatientID.__class__}", "{PatientID!r}", "../{PatientID}", "/abs/{PatientID}", "{PatientID"])
def test_bad_templates_are_refused(tree, tmp_path, template):
    expect_error({"op": "organize", "input": str(tree.root), "output": str(tmp_path / "o"), "options": {"by": template}}, "invalid_request")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_collisions_never_overwrite_and_reruns_change_nothing(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    save(ct_slice(PatientID="P1", seed=1), src / "one" / "img.dcm")
    save(ct_slice(PatientID="P1", seed=2), src / "two" / "img.dcm")
    request = {"op": "organize", "input": str(src), "output": str(out), "options": {"by": "patient", "workers": 1}}
    first = expect_ok(request)
    assert sorted(Path(p).name for p in first["output_files"]) == ["img.dcm", "img_2.dcm"]
    assert (out / "P1" / "img.dcm").read_bytes() == (src / "one" / "img.dcm").read_bytes()
    assert (out / "P1" / "img_2.dcm").read_bytes() == (src / "two" / "img.dcm").read_bytes()
    again = expect_ok(request)
    assert again["metadata"]["files_unchanged"] == 2 and again["output_files"] == []
    assert sorted(p.name for p in (out / "P1").iterdir()) == ["img.dcm", "img_2.dcm"]


def test_dry_run_lists_the_plan_and_touches_nothing(tree, tmp_path):
    out = tmp_path / "out"
    data = expect_ok({"op": "organize", "input": str(tree.root), "output": str(out), "options": {"by": "modality", "dry_run": True, "workers": 1}})
    plan = data["metadata"]["plan"]
    assert len(plan) == len(tree.dicom) and data["output_files"] == []
    assert {Path(step["target"]).relative_to(out).parts[0] for step in plan} == {"CT", "MR", "NM", "OT"}
    assert not out.exists() or not any(out.rglob("*"))


def test_move_and_link(tmp_path):
    src = tmp_path / "src"
    a = save(ct_slice(PatientID="M1"), src / "a.dcm")
    b = save(ct_slice(PatientID="L1"), src / "b.dcm")
    moved = expect_ok({"op": "organize", "input": str(a), "output": str(tmp_path / "m"), "options": {"by": "patient", "mode": "move", "workers": 1}})
    assert not a.exists() and Path(moved["output_files"][0]) == tmp_path / "m" / "M1" / "a.dcm"
    linked = expect_ok({"op": "organize", "input": str(b), "output": str(tmp_path / "l"), "options": {"by": "patient", "mode": "link", "workers": 1}})
    link = Path(linked["output_files"][0])
    assert link.is_symlink() and os.path.samefile(link, b) and b.exists()
