"""`options.timeout` is a promise on every backend: the Python backend runs a time-limited op in a
worker process that is killed when time is up (nothing left behind), and every timeout-like
option is bounded by the schema (1e308 used to crash a subprocess adapter with OverflowError)."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from conftest import expect_error, expect_ok, require_backend, run_request, sample
from dicom_hub.adapters.time_limit import output_snapshot, remove_new_output
from factories import ct_slice, save


@pytest.fixture(scope="module")
def big_ct(tmp_path_factory):
    """A 2048 x 2048 x 8-frame 16-bit image (64 MiB): `stats` on it takes seconds."""
    ds = ct_slice(rows=2048, cols=2048)
    frames = 8
    rng = np.random.default_rng(7)
    ds.NumberOfFrames = frames
    ds.PixelData = rng.integers(0, 4000, size=(frames, 2048, 2048), dtype=np.uint16).tobytes()
    return save(ds, tmp_path_factory.mktemp("big") / "big.dcm")


def test_python_honours_timeout_instead_of_ignoring_it(big_ct):
    start = time.monotonic()
    data = expect_error({"op": "stats", "input": str(big_ct), "backend": "python", "options": {"timeout": 0.05}}, "timeout")
    assert time.monotonic() - start < 3, "the worker was not stopped when time was up"
    assert "0.05 s" in data["error"]["message"] and data["backend"] == "python"


def test_time_limited_answer_is_the_in_process_answer():
    request = {"op": "stats", "input": "sample:CT_small.dcm", "backend": "python"}
    direct = expect_ok(request)["metadata"]
    limited = expect_ok({**request, "options": {"timeout": 120}})["metadata"]
    assert limited == direct


def test_time_limited_errors_keep_their_code(tmp_path):
    not_dicom = tmp_path / "notes.dcm"
    not_dicom.write_text("hello " * 50)
    data = expect_error({"op": "info", "input": str(not_dicom), "backend": "python", "options": {"timeout": 60}}, "not_dicom")
    assert data["returncode"] == 1
    out = tmp_path / "CT.png"
    expect_ok({"op": "to_image", "input": "sample:CT_small.dcm", "output": str(out), "options": {"timeout": 60}})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_timeout_leaves_no_output(tmp_path, big_ct):
    out = tmp_path / "out" / "big.png"
    expect_error({"op": "to_image", "input": str(big_ct), "output": str(out), "options": {"timeout": 0.05}}, "timeout")
    assert not out.exists() and not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_batch_killed_midway_leaves_no_folder(tmp_path):
    """Killed at whatever point (before, during or after writing files), a timed-out batch leaves
    no output folder; one that finishes writes every file."""
    source = tmp_path / "in"
    source.mkdir()
    for index in range(150):  # about 4 s of work on one core: the limits below stop it midway
        shutil.copyfile(sample("CT_small.dcm"), source / f"ct{index}.dcm")
    outcomes = []
    for limit in (1.0, 2.0):
        out = tmp_path / f"out{limit}"
        data = run_request({"op": "batch_decompress", "input": str(source), "output": str(out), "backend": "python", "options": {"timeout": limit, "workers": 1}})
        outcomes.append(data["ok"])
        if data["ok"]:
            assert len(list(out.glob("**/*.dcm"))) == 150
        else:
            assert data["error"]["code"] == "timeout"
            assert not out.exists(), sorted(p.name for p in out.rglob("*"))[:5]
    assert not all(outcomes), "no run was stopped: the batch is too small to test the limit"


def test_cleanup_removes_only_what_the_worker_created(tmp_path):
    old = tmp_path / "other.txt"
    old.write_text("keep")
    earlier = tmp_path / "out.png.bak"
    earlier.write_text("keep")
    out = tmp_path / "out.png"
    before = output_snapshot(out, "file")
    (tmp_path / ".out.png.a1b2.part").write_bytes(b"partial")
    (tmp_path / "out.json").write_text("{}")  # a sidecar written before the kill
    (tmp_path / "unrelated-new.txt").write_text("someone else's")
    remove_new_output(out, "file", before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "out.png.bak", "unrelated-new.txt"]

    folder = tmp_path / "series"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "a.dcm").write_bytes(b"old")
    before = output_snapshot(folder, "directory")
    (folder / "old" / "b.dcm").write_bytes(b"new")
    (folder / "new" / "deep").mkdir(parents=True)
    (folder / "new" / "deep" / "c.dcm").write_bytes(b"new")
    remove_new_output(folder, "directory", before)
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["old", "old/a.dcm"]

    new_parent = tmp_path / "new" / "out.png"
    before = output_snapshot(new_parent, "file")
    new_parent.parent.mkdir()
    (new_parent.parent / ".out.png.x9.part").write_bytes(b"partial")
    remove_new_output(new_parent, "file", before)
    assert list(new_parent.parent.iterdir()) == []

    fresh = tmp_path / "fresh"
    before = output_snapshot(fresh, "directory")
    (fresh / "x").mkdir(parents=True)
    remove_new_output(fresh, "directory", before)
    assert not fresh.exists()


@pytest.mark.parametrize("backend", ["python", "dcmtk", "gdcm", "pixelmed", "csharp"])
def test_huge_timeout_is_invalid_request(backend):
    require_backend(backend)
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": backend, "options": {"timeout": 1e308}}, "invalid_request")
    assert "timeout" in data["error"]["message"] and data["returncode"] == 2
    expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": backend, "options": {"timeout": 86400}})


@pytest.mark.parametrize("option", ["network_timeout", "dimse_timeout"])
def test_network_timeouts_are_bounded(option):
    expect_error({"op": "echo", "options": {"host": "127.0.0.1", "port": 9, option: 1e308}}, "invalid_request")
