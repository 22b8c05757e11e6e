"""extract_metadata: one row per file, every element flattened, consistent strings, CSV and
Parquet, and a run killed with SIGKILL that resumes to exactly the rows of an uninterrupted run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_trees import build_tree, synthetic_archive
from conftest import expect_error, expect_ok, missing
from dicom_hub.python_backend.batch.state import RunState
from factories import ct_slice, save, with_nested_sequences
from pydicom import dcmread
from pydicom.sequence import Sequence


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _extract(inputs, output: Path, **options) -> dict:
    return expect_ok({"op": "extract_metadata", "input": inputs, "output": str(output), "options": {"workers": 1, **options}})


@pytest.fixture
def two_files(tmp_path):
    a = ct_slice(PatientID="A1", AccessionNumber="", StudyDescription="", ImageType=["ORIGINAL", "PRIMARY", "AXIAL"])
    with_nested_sequences(a, depth=2)
    a.add_new(0x60003000, "OW", b"\x00\x01" * 64)  # overlay data: never a column
    a.add_new(0x60000010, "US", 16)  # overlay rows: an ordinary element
    a.add_new(0x00291010, "OB", b"\x01\x02\x03\x04")  # short private binary: hex
    a.add_new(0x00291011, "OB", b"\x00" * 1000)  # long binary: left out
    b = ct_slice(PatientID="B2", AccessionNumber="", StudyDescription="head", PatientName="Müller^Jörg")
    b.SpecificCharacterSet = "ISO_IR 192"
    b.ReferencedImageSequence = Sequence([])
    return save(a, tmp_path / "in" / "a.dcm"), save(b, tmp_path / "in" / "b.dcm")


def test_rows_columns_and_strings(two_files, tmp_path):
    a, b = two_files
    data = _extract(str(tmp_path / "in"), tmp_path / "meta.csv")
    columns, rows = _read_csv(tmp_path / "meta.csv")
    assert data["metadata"]["rows"] == 2 and data["metadata"]["columns"] == len(columns)
    assert columns[0] == "path" and [r["path"] for r in rows] == [str(a), str(b)]
    ra, rb = rows
    ds = dcmread(a)
    nested = ds.ReferencedImageSequence[0]
    assert ra["ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)"] == nested.ReferencedSOPInstanceUID
    key = "ReferencedImageSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID (0008,1155)"
    assert ra[key] == nested.ReferencedImageSequence[0].ReferencedSOPInstanceUID and rb[key] == ""
    assert json.loads(ra["ImageType (0008,0008)"]) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert json.loads(ra["PixelSpacing (0028,0030)"]) == ["0.5", "0.5"]
    assert ra["Rows (0028,0010)"] == "16" and ra["PatientName (0010,0010)"] == "Synthetic^Patient"
    assert rb["PatientName (0010,0010)"] == "Müller^Jörg"
    assert ra["(0029,1010)"] == "01020304" and "(0029,1011)" not in columns
    assert ra["OverlayRows (6000,0010)"] == "16"
    assert not any("(7FE0,0010)" in c or "(6000,3000)" in c for c in columns)
    assert "AccessionNumber (0008,0050)" not in columns, "a column empty in every row is dropped"
    assert ra["StudyDescription (0008,1030)"] == "" and rb["StudyDescription (0008,1030)"] == "head"
    assert ra["TransferSyntaxUID (0002,0010)"] == "1.2.840.10008.1.2.1"


def test_parquet_has_the_same_rows(two_files, tmp_path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        missing("python package pyarrow (pip install 'dicom-hub[parquet]')")
    _extract(str(tmp_path / "in"), tmp_path / "meta.csv")
    data = _extract(str(tmp_path / "in"), tmp_path / "meta.parquet")
    assert data["metadata"]["format"] == "parquet"
    columns, rows = _read_csv(tmp_path / "meta.csv")
    table = pq.read_table(tmp_path / "meta.parquet")
    assert table.column_names == columns
    assert [{k: v or "" for k, v in r.items()} for r in table.to_pylist()] == rows


def test_messy_tree_reports_failed_files(tmp_path):
    tree = build_tree(tmp_path / "tree")
    data = _extract(str(tree.root), tmp_path / "meta.csv", workers=2)
    meta = data["metadata"]
    assert meta["rows"] == len(tree.dicom) == meta["files_processed"]
    assert {e["path"]: e["code"] for e in meta["errors"]} == {str(p): c for p, c in tree.broken.items()}
    _, rows = _read_csv(tmp_path / "meta.csv")
    assert [r["path"] for r in rows] == [str(p) for p in tree.taken if p in tree.dicom]


def test_existing_output_needs_overwrite(two_files, tmp_path):
    (tmp_path / "meta.csv").write_text("keep")
    expect_error({"op": "extract_metadata", "input": str(tmp_path / "in"), "output": str(tmp_path / "meta.csv")}, "output_exists")
    assert (tmp_path / "meta.csv").read_text() == "keep"


def test_a_second_run_cannot_share_the_state(two_files, tmp_path):
    output = tmp_path / "meta.csv"
    with RunState(output):
        data = expect_error({"op": "extract_metadata", "input": str(tmp_path / "in"), "output": str(output)}, "output_error")
    assert "another extract_metadata run" in data["error"]["message"]
    assert not output.exists()


def test_state_from_other_arguments_is_not_mixed_in(two_files, tmp_path):
    output = tmp_path / "meta.csv"
    with RunState(output) as state:
        state.start({"inputs": ["/elsewhere"]}, ["/elsewhere/x.dcm"], 0)
    expect_error({"op": "extract_metadata", "input": str(tmp_path / "in"), "output": str(output)}, "invalid_request")
    data = _extract(str(tmp_path / "in"), output, resume=False)
    assert data["metadata"]["rows"] == 2 and not data["metadata"]["resumed"]


SLOW_CHILD = """
import json, time
from dicom_hub.adapters.dispatch import dispatch
from dicom_hub.python_backend.batch import extract
fast = extract.extract_one
def slow(*args):
    time.sleep(0.003)
    return fast(*args)
extract.extract_one = slow
dispatch(json.loads({request!r}))
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    synthetic_archive(root, patients=40, slices=10)
    return root


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_killed_run_resumes_to_the_same_rows(archive, tmp_path, stop):
    reference = tmp_path / "reference.csv"
    _extract(str(archive), reference, chunk_files=10, workers=2)

    output = tmp_path / "resumed.csv"
    request = {"op": "extract_metadata", "input": str(archive), "output": str(output), "options": {"workers": 1, "chunk_files": 10}}
    # The child reads each file 3 ms slower, so the signal always lands mid-run on any machine.
    code = SLOW_CHILD.format(request=json.dumps(request))
    child = subprocess.Popen([sys.executable, "-c", code])
    state = RunState(output).folder
    deadline = time.monotonic() + 60
    while not (state / "chunk-000003.jsonl").exists():
        assert child.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(child.pid, stop)
    child.wait(timeout=60)
    saved = sorted(state.glob("chunk-*.jsonl"))
    assert not output.exists() and 4 <= len(saved) < 40, "killed mid-run"

    data = _extract(str(archive), output, chunk_files=10, workers=2)
    assert data["metadata"]["resumed"] and data["metadata"]["chunks_reused"] >= len(saved)
    assert _read_csv(output) == _read_csv(reference)
    assert len(_read_csv(output)[1]) == 400
    assert not state.exists(), "the state is removed after success"


def test_a_file_cut_short_is_a_flagged_partial_row(tmp_path):
    """A header cut mid-element (a file copied in part) still gives its row, flagged as partial,
    and the response names the file under `warnings`; whole files are not flagged."""
    from pydicom.data import get_testdata_file

    folder = tmp_path / "in"
    folder.mkdir()
    whole = Path(get_testdata_file("CT_small.dcm"))
    (folder / "whole.dcm").write_bytes(whole.read_bytes())
    (folder / "cut.dcm").write_bytes(whole.read_bytes()[:700])  # inside the header, long before the pixels
    (folder / "rtplan_truncated.dcm").write_bytes(Path(get_testdata_file("rtplan_truncated.dcm")).read_bytes())
    meta = _extract([str(folder)], tmp_path / "headers.csv")["metadata"]
    assert sorted(Path(w["path"]).name for w in meta["warnings"]) == ["cut.dcm", "rtplan_truncated.dcm"]
    assert meta["files_incomplete"] == 2 and meta["files_processed"] == 3
    assert all(w["code"] == "decode_error" and "cut short" in w["message"] for w in meta["warnings"])
    columns, rows = _read_csv(tmp_path / "headers.csv")
    assert columns[:2] == ["path", "incomplete"]
    flags = {Path(r["path"]).name: r["incomplete"] for r in rows}
    assert flags["whole.dcm"] == ""
    assert "byte" in flags["cut.dcm"] and "(300A,00B0)" in flags["rtplan_truncated.dcm"]


CRASHING_CHILD = """
import json, os, signal
from dicom_hub.adapters.dispatch import dispatch
from dicom_hub.python_backend.batch import extract
real = extract.extract_one
def crashing(source, target, options):
    if source.parent.parent.name == {patient!r} and source.name == "004.dcm":
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in native code takes its process with it
    return real(source, target, options)
extract.extract_one = crashing
print(dispatch(json.loads({request!r})).to_json())
"""


def test_a_file_that_kills_its_worker_costs_only_its_row(archive, tmp_path):
    """Chunks are read by pool workers; the chunk whose worker died is read again file by file,
    so the crashing file becomes its own `backend_error` and every other row is there."""
    reference = tmp_path / "reference.csv"
    _extract(str(archive), reference, chunk_files=10, workers=2)
    output = tmp_path / "table.csv"
    request = {"op": "extract_metadata", "input": str(archive), "output": str(output), "options": {"workers": 2, "chunk_files": 10}}
    code = CRASHING_CHILD.format(patient="P0017", request=json.dumps(request))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    data = json.loads(result.stdout)
    assert data["ok"], data["error"]
    crashed = str(archive / "P0017" / "S0" / "004.dcm")
    assert [(e["path"], e["code"]) for e in data["metadata"]["errors"]] == [(crashed, "backend_error")]
    columns, rows = _read_csv(output)
    expected_columns, expected = _read_csv(reference)
    assert columns == expected_columns and rows == [r for r in expected if r["path"] != crashed]


NO_PYDICOM_CHILD = """
import functools, json, os, sys
from dicom_hub.adapters.dispatch import dispatch
from dicom_hub.python_backend.batch import extract

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("pydicom", "numpy"))

def reporting(task):  # in the forked workers too: what each process had imported after its task
    @functools.wraps(task)  # sent to the workers by name, as the task itself is
    def run(argument):
        result = task(argument)
        with open({log!r}, "a") as f:
            f.write(json.dumps([os.getpid(), heavy()]) + "\\n")
        return result
    return run

extract.extract_chunk = reporting(extract.extract_chunk)
extract.csv_part = reporting(extract.csv_part)
response = dispatch(json.loads({request!r}))
assert response.ok, response.error
print(json.dumps([os.getpid(), heavy()]))
"""


def test_a_plain_archive_is_read_without_pydicom(archive, tmp_path):
    """The bytes-level reader and the dictionary serve plain little-endian files: no process of
    the run imports pydicom (or numpy), which alone costs more than reading 1,000 headers."""
    log = tmp_path / "imports.log"
    request = {"op": "extract_metadata", "input": str(archive), "output": str(tmp_path / "t.csv"), "options": {"workers": 2, "chunk_files": 50}}
    code = NO_PYDICOM_CHILD.format(log=str(log), request=json.dumps(request))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    reports = [json.loads(line) for line in [result.stdout, *log.read_text().splitlines()]]
    # The parent and at least one worker (on a loaded machine one worker may take every task).
    assert len({pid for pid, _ in reports}) >= 2, "the parent and the workers reported"
    assert all(modules == [] for _, modules in reports), reports
    assert len(_read_csv(tmp_path / "t.csv")[1]) == 400


def test_a_chunk_keeps_rows_whose_columns_appear_later(tmp_path):
    """Rows are saved as they come, each under the columns known so far: reading the chunk back
    gives every row at the chunk's full width, None where a row has no such element."""
    rows = [
        {"path": "a", "PatientID (0010,0020)": "A", "StudyDescription (0008,1030)": ""},
        {"path": "b", "PatientID (0010,0020)": "B", "Modality (0008,0060)": "CT", "incomplete": "cut"},
        {"path": "c", "StudyDescription (0008,1030)": "head", "PatientID (0010,0020)": ""},
    ]
    with RunState(tmp_path / "t.csv") as state:
        state.save_chunk(0, rows, [{"path": "d", "code": "not_dicom", "message": "x"}])
        header = state.chunk_header(0)
        assert header["columns"] == ["path", "PatientID (0010,0020)", "StudyDescription (0008,1030)", "Modality (0008,0060)", "incomplete"]
        assert header["used"] == sorted(header["columns"]) and header["rows"] == 3
        assert [w["path"] for w in header["warnings"]] == ["b"] and header["errors"][0]["path"] == "d"
        assert list(state.chunk_rows(0)) == [
            ["a", "A", "", None, None],
            ["b", "B", None, "CT", "cut"],
            ["c", "", "head", None, None],
        ]
        state.save_chunk(1, rows[:1], [])
        assert state.chunk_header(1)["used"] == ["PatientID (0010,0020)", "path"], "a column empty in every row is not used"
