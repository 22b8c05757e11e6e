"""Batch runs that are killed, crash or meet hostile input: no orphan worker, a rerun that
completes with nothing duplicated, lost or half-written, one bad file never stopping a batch."""

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
from batch_trees import synthetic_archive
from conftest import expect_error, expect_ok, missing
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.job import Job
from dicom_hub.python_backend.batch.runner import iter_results, run_batch, runs_in_parent
from dicom_hub.python_backend.batch.state import RunState
from factories import ct_slice, save
from peers import children_of, process_alive

BATCH_DEFAULTS = get_op("batch_convert").defaults  # what the dispatcher gives every job

KEY = "batch-robustness-test-key-0123456789"


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    synthetic_archive(root, patients=6, slices=10)
    return root


# -- kill -9 of every batch op -------------------------------------------------------------------

# The child slows its per-file function (in the workers too: they are forked from it), so the
# kill always lands mid-run; the rerun in this process uses the real function.
SLOW_CHILD = """
import importlib, json, sys, time
from dicom_hub.adapters.dispatch import dispatch
module = importlib.import_module({module!r})
fast = getattr(module, {name!r})
def slow(*args):
    time.sleep(0.05)
    return fast(*args)
setattr(module, {name!r}, slow)
dispatch(json.loads({request!r}))
"""

BATCH = "dicom_hub.python_backend.batch."
# batch_anonymize's parent runs files too (`runner.runs_in_parent`): 3 workers are the parent and
# the 2 forked workers the kill must take down with it.
WRITING_OPS = {
    "batch_anonymize": ("dicom_hub.python_backend.deid.ops", "anonymize_file", {"key": KEY, "workers": 3}),
    "batch_decompress": (BATCH + "ops", "decompress_one", {}),
    "batch_convert": (BATCH + "ops", "call_op", {}),
    "organize": (BATCH + "organize", "read_fields", {"by": "{PatientID}/{SeriesInstanceUID}"}),
}
READING_OPS = {
    "batch_list": (BATCH + "ops", "list_one", {}),
    "batch_validate": (BATCH + "ops", "call_op", {}),
    "extract_metadata": (BATCH + "extract", "extract_one", {"chunk_files": 5}),
}


def _files(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` and its bytes; while a run writes, a temporary file
    renamed into place between the listing and the read is simply not there yet."""
    found: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        if path.is_file() and not path.is_symlink():
            try:
                found[str(path.relative_to(folder))] = path.read_bytes()
            except FileNotFoundError:
                continue
    return found


def _kill_mid_run(request: dict, module: str, name: str, started) -> tuple[set[int], subprocess.Popen]:
    """Start the op in a child with 2 workers, wait until `started()` and both workers exist,
    then kill -9 it; return the worker pids seen before the kill."""
    code = SLOW_CHILD.format(module=module, name=name, request=json.dumps(request))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while not (started() and len(workers) >= 2):
        assert child.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the run did not start in time"
        workers |= children_of(child.pid)
        time.sleep(0.01)
    time.sleep(0.2)  # the workers are busy with their first files
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    return workers, child


def _assert_workers_die(workers: set[int]) -> None:
    deadline = time.monotonic() + 5
    while any(process_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if process_alive(pid)], "worker processes outlived the killed batch"


@pytest.mark.parametrize("op", sorted(WRITING_OPS))
def test_killed_writing_op_leaves_no_worker_and_the_rerun_completes(archive, tmp_path, op):
    module, name, options = WRITING_OPS[op]
    reference = tmp_path / "reference"
    expect_ok({"op": op, "input": str(archive), "output": str(reference), "options": {"workers": 2, **options}})
    expected = _files(reference)
    assert len(expected) == 60

    output = tmp_path / "out"
    request = {"op": op, "input": str(archive), "output": str(output), "options": {"workers": 2, **options}}
    workers, _ = _kill_mid_run(request, module, name, lambda: len(_files(output)) >= 4)
    _assert_workers_die(workers)
    written = _files(output)
    time.sleep(0.3)
    assert _files(output).keys() == written.keys(), "outputs were still written after the kill"
    assert 0 < len([k for k in written if not Path(k).name.startswith(".")]) < 60, "killed mid-run"

    data = expect_ok(request)
    assert data["metadata"]["files_failed"] == 0, data["metadata"]["errors"][:3]
    assert data["metadata"]["files_processed"] + data["metadata"].get("files_unchanged", 0) == 60
    assert _files(output) == expected, "the rerun's outputs differ from an uninterrupted run's"
    assert not list(tmp_path.glob(".*.state")), "the run state is removed after success"


@pytest.mark.parametrize("op", sorted(READING_OPS))
def test_killed_reading_op_leaves_no_worker(archive, tmp_path, op):
    module, name, options = READING_OPS[op]
    output = tmp_path / "table.csv"
    request = {"op": op, "input": str(archive), "options": {**options, "workers": 2}}
    if op == "extract_metadata":
        request["output"] = str(output)
    workers, _ = _kill_mid_run(request, module, name, lambda: True)
    _assert_workers_die(workers)
    if op == "extract_metadata":
        data = expect_ok(request)
        assert data["metadata"]["resumed"] and data["metadata"]["files_failed"] == 0
        with open(output, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert sorted(r["path"] for r in rows) == sorted(str(p) for p in archive.rglob("*.dcm"))


# -- one bad file never stops a batch ------------------------------------------------------------


class FakePanic(BaseException):
    """What pyo3 raises for a Rust panic: derived from BaseException, not Exception."""


def _panic_or_copy(source: Path, target: Path | None, context: object) -> dict:
    if source.name == "bad.dcm":
        raise FakePanic("called `Option::unwrap()` on a `None` value")
    if source.name == "crash.dcm":
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in native code (or the OOM killer) takes the worker with it
    return {"size": source.stat().st_size}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_panic_is_a_per_file_error(tmp_path, workers):
    for name in ("a.dcm", "bad.dcm", "c.dcm"):
        (tmp_path / name).write_text(name)
    items = [(tmp_path / n, None) for n in ("a.dcm", "bad.dcm", "c.dcm")]
    outcomes = list(iter_results(items, _panic_or_copy, workers=workers))
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error.code == "internal_error" and "FakePanic" in outcomes[1].error.message
    assert outcomes[2].value == {"size": 5}


_TEST_PROCESS = os.getpid()


@runs_in_parent
def _crash_in_a_worker(source: Path, target: Path | None, context: object) -> dict:
    """Files run in the parent too; `crash.dcm` takes down the worker it runs in."""
    if source.name == "crash.dcm" and os.getpid() != _TEST_PROCESS:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid()}


def test_a_crashing_worker_costs_only_its_file_when_the_parent_takes_part(tmp_path):
    """The first chunk always goes to a worker; the parent runs others, never a crashing one here."""
    names = ["crash.dcm"] + [f"{i:02d}.dcm" for i in range(30)]
    for name in names:
        (tmp_path / name).write_text(name)
    outcomes = list(iter_results([(tmp_path / n, None) for n in names], _crash_in_a_worker, workers=2))
    assert [o.source.name for o in outcomes] == names, "every file once, in order"
    assert [(o.source.name, o.error.code) for o in outcomes if not o.ok] == [("crash.dcm", "backend_error")]
    pids = {o.value["pid"] for o in outcomes if o.ok}
    assert _TEST_PROCESS in pids and len(pids) >= 2, "the parent and a worker both ran files"


def test_a_crashing_worker_costs_only_its_file(tmp_path):
    names = [f"{i:02d}.dcm" for i in range(12)] + ["crash.dcm"] + [f"z{i}.dcm" for i in range(12)]
    for name in names:
        (tmp_path / name).write_text(name)
    outcomes = list(iter_results([(tmp_path / n, None) for n in names], _panic_or_copy, workers=2))
    assert [o.source.name for o in outcomes] == names, "every file once, in order"
    failed = [(o.source.name, o.error.code) for o in outcomes if not o.ok]
    assert failed == [("crash.dcm", "backend_error")]
    assert all(o.value == {"size": len(o.source.name)} for o in outcomes if o.ok)


# -- state folders and temporaries ---------------------------------------------------------------


def test_a_planted_state_symlink_is_refused(archive, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".table.csv.state").symlink_to(elsewhere, target_is_directory=True)
    data = expect_error({"op": "extract_metadata", "input": str(archive), "output": str(tmp_path / "table.csv")}, "output_error")
    assert "symbolic link" in data["error"]["message"]
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "table.csv").exists()
    (tmp_path / ".out.state").symlink_to(elsewhere, target_is_directory=True)
    expect_error({"op": "batch_decompress", "input": str(archive), "output": str(tmp_path / "out")}, "output_error")
    assert list(elsewhere.iterdir()) == []


def test_stale_temporaries_of_the_output_are_removed(archive, tmp_path):
    stale = tmp_path / ".table.csv.k3j2h1g0.part"
    stale.write_text("half a table")
    unrelated = tmp_path / ".other.csv.k3j2h1g0.part"
    unrelated.write_text("not ours")
    expect_ok({"op": "extract_metadata", "input": str(archive), "output": str(tmp_path / "table.csv"), "options": {"workers": 1}})
    assert not stale.exists() and unrelated.exists()

    out = tmp_path / "out" / "P0000" / "S0"
    out.mkdir(parents=True)
    stale_file = out / ".000_decompressed.dcm.a1b2c3d4.part"
    stale_file.write_bytes(b"half")
    job = expect_ok({"op": "batch_decompress", "input": str(archive), "output": str(tmp_path / "out"), "options": {"workers": 1}})
    assert job["metadata"]["files_processed"] == 60
    assert not [p for p in (tmp_path / "out").rglob(".*")], "no temp file survives"


def test_journaled_outputs_are_not_redone(archive, tmp_path):
    """A rerun skips what the journal of the interrupted run lists, and returns its values."""
    from dicom_hub.python_backend.batch.state import RunState

    out = tmp_path / "out"
    first = tmp_path / "first"
    data = expect_ok({"op": "batch_anonymize", "input": str(archive), "output": str(first), "options": {"key": KEY, "workers": 1}})
    assert data["metadata"]["files_processed"] == 60
    # Simulate an interrupted run: half the outputs and the journal lines that go with them.
    request = {"op": "batch_anonymize", "input": str(archive / "P0000"), "output": str(out), "options": {"key": KEY, "workers": 1}}
    expect_ok(request)
    journal_probe = sorted(p for p in out.rglob("*.dcm"))
    assert len(journal_probe) == 10
    with RunState(out, "batch_anonymize") as state:
        assert state.read_journal() == {}  # removed after success
    again = expect_ok(request)
    assert again["metadata"]["files_resumed"] == 10 and again["metadata"]["files_failed"] == 0


# -- organize ------------------------------------------------------------------------------------


def test_identical_files_within_one_run_are_organized_once(tmp_path):
    ds = ct_slice(PatientID="SAME")
    one = save(ds, tmp_path / "in" / "a" / "x.dcm")
    two = tmp_path / "in" / "b" / "x.dcm"
    two.parent.mkdir(parents=True)
    two.write_bytes(one.read_bytes())
    data = expect_ok({"op": "organize", "input": str(tmp_path / "in"), "output": str(tmp_path / "out"), "options": {"by": "{PatientID}", "workers": 1}})
    assert sorted(p.name for p in (tmp_path / "out" / "SAME").iterdir()) == ["x.dcm"]
    assert (data["metadata"]["files_processed"], data["metadata"]["files_unchanged"]) == (1, 1)
    # A different file of the same name still gets its own name.
    save(ct_slice(PatientID="SAME", seed=7), tmp_path / "in" / "c" / "x.dcm")
    data = expect_ok({"op": "organize", "input": str(tmp_path / "in"), "output": str(tmp_path / "out"), "options": {"by": "{PatientID}", "workers": 1}})
    assert sorted(p.name for p in (tmp_path / "out" / "SAME").iterdir()) == ["x.dcm", "x_2.dcm"]
    assert data["metadata"]["files_unchanged"] == 2


@pytest.mark.parametrize("by", ["{PatientID:>1000000000}", "{SeriesNumber:.999d}", "{PatientID:{Modality}}"])
def test_huge_or_nested_format_specs_are_refused(tmp_path, by):
    save(ct_slice(), tmp_path / "in" / "x.dcm")
    started = time.monotonic()
    expect_error({"op": "organize", "input": str(tmp_path / "in"), "output": str(tmp_path / "out"), "options": {"by": by}}, "invalid_request")
    assert time.monotonic() - started < 10 and not (tmp_path / "out").exists()


def test_widths_up_to_the_name_limit_are_fine(tmp_path):
    save(ct_slice(PatientID="P1", SeriesNumber=3), tmp_path / "in" / "x.dcm")
    expect_ok({"op": "organize", "input": str(tmp_path / "in"), "output": str(tmp_path / "out"), "options": {"by": "{PatientID:_>128}/{SeriesNumber:04d}", "workers": 1}})
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name == "_" * 126 + "P1" and (folder / "0003" / "x.dcm").is_file()


# -- spreadsheet-safe CSV ------------------------------------------------------------------------


def test_csv_cells_cannot_run_formulas(tmp_path):
    ds = ct_slice(PatientID="+cmd|' /C calc'!A0", StudyDescription='=HYPERLINK("http://evil","x")', SliceLocation="-12.5")
    ds.SeriesDescription = "@SUM(1+1)"
    ds.InstitutionName = "\tTAB"
    save(ds, tmp_path / "in" / "x.dcm")
    safe, raw = tmp_path / "safe.csv", tmp_path / "raw.csv"
    expect_ok({"op": "extract_metadata", "input": str(tmp_path / "in"), "output": str(safe), "options": {"workers": 1}})
    expect_ok({"op": "extract_metadata", "input": str(tmp_path / "in"), "output": str(raw), "options": {"workers": 1, "escape_formulas": False}})

    def row(path: Path) -> dict[str, str]:
        with open(path, newline="", encoding="utf-8") as f:
            (only,) = csv.DictReader(f)
        return {key.split(" ")[0]: value for key, value in only.items()}

    safe_row, raw_row = row(safe), row(raw)
    assert safe_row["PatientID"] == "'+cmd|' /C calc'!A0" and raw_row["PatientID"] == "+cmd|' /C calc'!A0"
    assert safe_row["StudyDescription"] == "'" + raw_row["StudyDescription"] and raw_row["StudyDescription"].startswith("=HYPERLINK")
    assert safe_row["SeriesDescription"] == "'@SUM(1+1)"
    assert safe_row["InstitutionName"].startswith("'")
    assert safe_row["SliceLocation"] == raw_row["SliceLocation"] == "-12.5", "plain numbers are kept"
    assert not any(v[:1] in "=+-@\t\r" and not v.lstrip("+-").replace(".", "", 1).isdigit() for v in safe_row.values() if v)


# -- executor option -----------------------------------------------------------------------------


def test_a_scheduler_without_the_dask_executor_is_refused(archive, tmp_path):
    expect_error({"op": "batch_list", "input": str(archive), "options": {"scheduler": "tcp://127.0.0.1:1"}}, "invalid_request")
    expect_error({"op": "batch_list", "input": str(archive), "options": {"executor": "ray"}}, "invalid_request")


def test_run_batch_in_process_still_works_without_a_state_for_reading_ops(archive):
    outcome = run_batch(Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(archive,), output=None, options={"workers": 1}), _panic_or_copy, writes_output=False)
    assert outcome.metadata["files_processed"] == 60


# -- the pieces the dask executor builds on --------------------------------------------------------


@pytest.mark.parametrize("lookahead", [1, 3, 64])
@pytest.mark.parametrize("recursive", [True, False])
def test_a_walk_by_folder_listings_finds_what_scan_finds(tmp_path, lookahead, recursive):
    """The streamed walk (one listing per folder, asked for ahead in bounded batches) on the
    messy tree: scan's files in scan's order and scan's skipped count, symlink loop included,
    for folders given in any order, nested, reached through a link, or with files named too."""
    from batch_trees import build_tree, synthetic_archive
    from dicom_hub.python_backend.batch.discovery import Found, list_folder, scan, walk_tree

    tree = build_tree(tmp_path / "tree")
    root = tree.root
    synthetic_archive(root / "more", patients=2, slices=2)
    (root / "a.b").mkdir()  # sorts after the folder a's files, before b
    (root / "a.b" / "x.dcm").write_bytes((root / "a" / "CT_small.dcm").read_bytes())
    (root / "link").symlink_to(root / "more", target_is_directory=True)
    asked: list[int] = []

    def list_folders(folders):
        asked.append(len(folders))
        return [list_folder(f, False) for f in folders]

    cases = [
        [root],
        [root, root / "a" / "CT_small.dcm", root / "notes.txt"],  # named files: taken, not skipped
        [root / "a", root],  # nested
        [root / "more", root / "a"],  # given out of order
        [root / "link", root / "more"],  # one folder through a link too
    ]
    for paths in cases:
        found = Found(walk_tree(list_folders, paths, recursive, lookahead))
        walked = list(found)
        local = scan(paths, recursive=recursive)
        assert walked == local.files, paths
        assert found.files_skipped == local.files_skipped, paths
        if recursive and paths == [root]:
            assert set(tree.taken) < set(walked) and (root / "a.b" / "x.dcm") in walked
            assert not any("loop" in p.parts for p in walked), "the link loop is entered once"
            assert not any("more" in p.parts for p in walked), "a folder reached twice is kept once (under link, sorted first)"
    assert max(asked) <= lookahead and len(asked) > 1


@pytest.mark.parametrize("recursive", [True, False])
def test_many_given_folders_are_listed_ahead_not_one_round_trip_each(tmp_path, recursive):
    """A request naming 40 folders (as a client splitting an archive by patient does): the folders
    still to come are listed together with the one the walk needs, so the walk asks 2 times, not
    80 (on Dask each ask is a round trip that waits for a worker), and finds what scan finds."""
    from dicom_hub.python_backend.batch.discovery import Found, list_folder, scan, walk_tree

    roots = []
    for i in range(40):
        root = tmp_path / f"p{i:02d}"
        (root / "series").mkdir(parents=True)
        (root / "series" / "1.dcm").write_bytes(b"taken by its name")
        (root / "2.dcm").write_bytes(b"taken by its name")
        (root / "notes.txt").write_text("left out")
        roots.append(root)
    asked: list[int] = []

    def list_folders(folders):
        asked.append(len(folders))
        return [list_folder(f, False) for f in folders]

    found = Found(walk_tree(list_folders, reversed(roots), recursive, 64))
    local = scan(roots, recursive=recursive)
    assert list(found) == local.files and len(local.files) == (80 if recursive else 40)
    assert found.files_skipped == local.files_skipped == 40
    assert len(asked) == (2 if recursive else 1) and max(asked) <= 64


def test_a_torn_journal_line_is_ignored(tmp_path):
    from dicom_hub.python_backend.batch.state import RunState

    out = tmp_path / "out"
    with RunState(out, "t") as state:
        state.journal_path.write_text('{"t": "/x/a.dcm", "v": {"n": 1}}\n{"t": "/x/b.dcm", "v": nu')
        assert state.read_journal() == {"/x/a.dcm": {"n": 1}}


def test_a_task_that_kills_every_worker_costs_only_its_file(tmp_path):
    """`KilledWorker` for a chunk: each file is retried alone; the one that kills again fails."""
    from importlib.util import find_spec

    if find_spec("distributed") is None:
        missing("dask.distributed (pip install 'dicom-hub[distributed]')")
    from dicom_hub.python_backend.batch.dask_executor import DaskExecutor, pack_results, unpack_chunk
    from distributed import KilledWorker

    class Future:
        def __init__(self, chunk):
            self.names = [Path(source).name for source, _ in chunk]

        def result(self):
            if "crash.dcm" in self.names:
                raise KilledWorker("task", "tcp://127.0.0.1:1", 3)
            return pack_results([({"name": name}, None, False, False) for name in self.names])  # as a worker sends them

        def cancel(self):
            pass

    class Client:
        def scatter(self, data, **_):
            return data

        def submit(self, _function, _payload, chunk, _verify, **_):
            return Future(unpack_chunk(chunk))  # a chunk travels as one string

        def scheduler_info(self):
            return {"workers": {"a": {}, "b": {}}}

    executor = DaskExecutor.__new__(DaskExecutor)
    executor.client = Client()
    names = ["a.dcm", "crash.dcm", "c.dcm", "d.dcm"]
    items = [(tmp_path / n, None) for n in names]
    outcomes = list(executor.run(items, _panic_or_copy, None, False, len(items)))
    assert [o.source.name for o in outcomes] == names
    assert [(o.source.name, o.error.code) for o in outcomes if not o.ok] == [("crash.dcm", "backend_error")]
    assert [o.value for o in outcomes if o.ok] == [{"name": "a.dcm"}, {"name": "c.dcm"}, {"name": "d.dcm"}]


def _sizes_sent(func, files: int) -> list[int]:
    """The chunk sizes a `DaskExecutor` on two workers sends for a stream of `files` files (a fake
    client that runs nothing: every chunk comes back plain)."""
    from dicom_hub.python_backend.batch.dask_executor import DaskExecutor, unpack_chunk

    sizes: list[int] = []

    class Future:
        def result(self):
            return None

        def cancel(self):
            pass

    class Client:
        def scatter(self, data, **_):
            return data

        def submit(self, _function, _payload, chunk, _verify, **_):
            sizes.append(len(unpack_chunk(chunk)))
            return Future()

        def scheduler_info(self):
            return {"workers": {"a": {}, "b": {}}}

    executor = DaskExecutor.__new__(DaskExecutor)
    executor.client = Client()
    items = ((f"/in/{i:06d}.dcm", f"/out/{i:06d}.dcm") for i in range(files))  # a stream: no total
    assert sum(len(chunk.items) for chunk in executor.run_chunks(items, func, None, False)) == files
    return sizes


def test_dask_chunks_grow_fast_and_stay_smaller_for_a_function_that_may_crash():
    """A task costs ~10 ms of CPU across client, scheduler and worker: chunks start at 16 files
    and grow with the files seen, to 1024 for a function that cannot crash its worker
    (`runs_in_parent`), to 256 for one that may (a chunk that kills its workers is retried file
    by file); 20,000 files are ~40 tasks, not hundreds."""
    from importlib.util import find_spec

    if find_spec("distributed") is None:
        missing("dask.distributed (pip install 'dicom-hub[distributed]')")
    pure = _sizes_sent(_pure_python, 20_000)
    native = _sizes_sent(_may_crash, 20_000)
    assert pure[:4] == [16] * 4 and max(pure) == 1024 and len(pure) <= 45
    assert native[:4] == [16] * 4 and max(native) == 256 and len(native) <= 100
    assert pure == sorted(pure[:-1]) + pure[-1:], "sizes only grow (the last chunk is what is left)"


@runs_in_parent
def _pure_python(source, target, context):
    raise AssertionError("the fake cluster runs nothing")


def _may_crash(source, target, context):
    raise AssertionError("the fake cluster runs nothing")


def test_a_worker_does_not_keep_the_lock_of_a_killed_run(tmp_path):
    """A forked worker closes its copy of the run lock, so a rerun right after kill -9 is not refused
    while a worker of the killed run is still alive (a flock lives as long as any copy of it)."""
    code = f"""
import os, time
from pathlib import Path
from dicom_hub.python_backend.batch.state import RunState, close_inherited_locks
RunState(Path({str(tmp_path / "table.csv")!r})).__enter__()
if os.fork() == 0:
    close_inherited_locks()
    print(os.getpid(), flush=True)  # only once its copy is closed
    time.sleep(60)
    os._exit(0)
time.sleep(60)
"""
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    worker = int(run.stdout.readline())
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    try:
        assert process_alive(worker)  # still there: this child has no death signal
        with RunState(tmp_path / "table.csv"):
            pass
    finally:
        os.kill(worker, signal.SIGKILL)
