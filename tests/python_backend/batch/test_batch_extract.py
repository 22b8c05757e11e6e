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
from batch_trees import build_tree, mixed_samples, synthetic_archive
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


# -- CSV parts formatted by the extraction tasks (`extract.CsvParts`) ----------------------------------


def _job(inputs, output: Path, **options):
    from dicom_hub.contract.catalog import get_op
    from dicom_hub.contract.job import Job

    return Job(op="extract_metadata", inputs=tuple(inputs), output=output, options=options, defaults=get_op("extract_metadata").defaults)


def _run_counting(monkeypatch, job) -> dict[str, list]:
    """Run `job` in this process, noting each map_tasks call's function, arguments and results."""
    from dicom_hub.python_backend.batch.extract import extract_metadata
    from dicom_hub.python_backend.batch.runner import LocalExecutor

    seen: dict[str, list] = {}
    real = LocalExecutor.map_tasks

    def counting(self, function, arguments, window=None):
        for result in real(self, function, list(arguments), window):
            seen.setdefault(function.__name__, []).append(result)
            yield result

    with monkeypatch.context() as patch:
        patch.setattr(LocalExecutor, "map_tasks", counting)
        extract_metadata(job)
    return seen


def _reference_table(monkeypatch, inputs, output: Path, **options) -> bytes:
    """The table as written with no part formatted by the extraction tasks: every chunk formatted
    at the end (the table as it was written before `CsvParts`)."""
    from dicom_hub.python_backend.batch import extract

    with monkeypatch.context() as patch:
        patch.setattr(extract, "preformat_part", lambda *args: None)
        seen = _run_counting(monkeypatch, _job(inputs, output, workers=1, **options))
    assert len(seen["csv_part"]) == len(seen["extract_chunk"]) > 1
    return output.read_bytes()


def test_alike_files_are_formatted_once_and_joined_as_they_are(archive, tmp_path, monkeypatch):
    """An archive of alike files: every chunk's task formats its part with the table's columns,
    so no chunk is formatted again at the end, and the table is the same bytes."""
    expected = _reference_table(monkeypatch, [archive], tmp_path / "reference.csv", chunk_files=30)
    for workers in (1, 2):
        output = tmp_path / f"w{workers}.csv"
        seen = _run_counting(monkeypatch, _job([archive], output, workers=workers, chunk_files=30))
        assert len(seen["extract_chunk"]) > 10 and "csv_part" not in seen, "a chunk was formatted again"
        assert all(header["csv"] for header in seen["extract_chunk"])
        assert output.read_bytes() == expected


@pytest.mark.parametrize("escape", [True, False], ids=["escaped", "raw"])
def test_mixed_files_give_the_same_table_bytes(tmp_path, monkeypatch, escape):
    """Files whose columns differ from chunk to chunk: the parts formatted with other columns
    than the table's are formatted again, the others joined as they are; the table is the same
    bytes as one formatted at the end, with either escaping."""
    root = mixed_samples(tmp_path / "mixed")
    expected = _reference_table(monkeypatch, [root], tmp_path / "reference.csv", chunk_files=2, escape_formulas=escape)
    assert (b"'=HYPERLINK" in expected) is escape
    output = tmp_path / "table.csv"
    seen = _run_counting(monkeypatch, _job([root], output, workers=1, chunk_files=2, escape_formulas=escape))
    assert output.read_bytes() == expected
    chunks = len(seen["extract_chunk"])
    assert 0 < len(seen["csv_part"]) < chunks, "some parts are formatted again, and some are used as they are"


def test_parts_formatted_in_vain_are_bounded(tmp_path, monkeypatch):
    """Every chunk brings new columns: the parts formatted before are stale each time; once more
    than `CsvParts.SPARE_PARTS` (and a quarter) are, the tasks stop formatting parts."""
    from dicom_hub.python_backend.batch.extract import CsvParts

    root = tmp_path / "growing"
    for i in range(30):  # file i has a private element of its own: a new column each chunk
        ds = ct_slice(PatientID=f"G{i:02d}")
        ds.add_new(0x00291000 + i, "LO", f"value {i}")
        save(ds, root / f"{i:02d}.dcm")
    expected = _reference_table(monkeypatch, [root], tmp_path / "reference.csv", chunk_files=1)
    output = tmp_path / "table.csv"
    seen = _run_counting(monkeypatch, _job([root], output, workers=1, chunk_files=1))
    formatted = [header["csv"] is not None for header in seen["extract_chunk"]]
    kept = CsvParts.SPARE_PARTS + 2  # the first part (the union then), and one more than the spare stale ones
    assert formatted == [True] * kept + [False] * (30 - kept)
    assert len(seen["csv_part"]) == 30 and output.read_bytes() == expected


def test_a_resumed_run_uses_no_part_of_the_run_it_resumes(archive, tmp_path, monkeypatch):
    """Parts are used only by the run that formatted them: a resumed run formats the reused
    chunks again (a part of an interrupted run may be stale or cut), and its table is the same."""
    from dicom_hub.python_backend.batch import extract
    from dicom_hub.python_backend.batch.runner import LocalExecutor

    expected = _reference_table(monkeypatch, [archive], tmp_path / "reference.csv", chunk_files=30)
    output = tmp_path / "table.csv"
    real = LocalExecutor.map_tasks

    def interrupted(self, function, arguments, window=None):
        for done, result in enumerate(real(self, function, arguments, window)):
            if done == 3:
                raise KeyboardInterrupt  # Ctrl-C after three chunks
            yield result

    with monkeypatch.context() as patch:
        patch.setattr(LocalExecutor, "map_tasks", interrupted)
        with pytest.raises(KeyboardInterrupt):
            extract.extract_metadata(_job([archive], output, workers=1, chunk_files=30))
    state = RunState(output)
    saved = len(list(state.folder.glob("chunk-*.jsonl")))
    assert saved >= 3 and len(list(state.folder.glob("part-*.csv"))) == saved and not output.exists()
    seen = _run_counting(monkeypatch, _job([archive], output, workers=1, chunk_files=30))
    assert len(seen["extract_chunk"]) > 5, "the run was resumed"
    assert seen["csv_part"] == [str(state.folder / f"part-{k:06d}.csv") for k in range(saved)], "the reused chunks are formatted again"
    assert output.read_bytes() == expected


def test_a_part_is_used_only_whole_and_as_described(tmp_path):
    """`fitting_part`: the part named by the chunk, made by this run, with the table's columns
    and escaping, and of the size it was written with."""
    from dicom_hub.python_backend.batch.extract import (
        CsvParts,
        columns_digest,
        fitting_part,
        preformat_part,
        table_columns,
    )
    from dicom_hub.python_backend.batch.state import ChunkRows

    rows = ChunkRows([{"path": "a", "Modality (0008,0060)": "=CT"}, {"path": "b", "Modality (0008,0060)": "MR"}])
    columns = columns_digest(["path", "Modality (0008,0060)"])
    with RunState(tmp_path / "t.csv") as state:
        parts = CsvParts(state, True)
        state.save_chunk(0, rows, [], csv=preformat_part(state, 0, rows))
        state.save_chunk(1, rows, [])
        summary = table_columns(state, range(2))
        assert list(summary.parts) == [0], "the chunks' parts, from their headers"
        entry = summary.parts[0]
        part = fitting_part(state, entry, columns, True, parts.run)
        assert part is not None and part.read_bytes() == b"a,'=CT\r\nb,MR\r\n"
        assert fitting_part(state, entry, columns, False, parts.run) is None, "other escaping"
        assert fitting_part(state, entry, columns_digest(["path", "PatientID (0010,0020)", "Modality (0008,0060)"]), True, parts.run) is None, "other columns"
        assert fitting_part(state, entry, columns, True, CsvParts(state, True).run) is None, "another run"
        with open(part, "a") as f:
            f.write("c,XX\r\n")
        assert fitting_part(state, entry, columns, True, parts.run) is None, "not the bytes it was written with"
        state.save_csv_hint(None)
        assert preformat_part(state, 1, rows) is None, "no hint: no part"
