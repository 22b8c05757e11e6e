"""The batch ops on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, started here and always stopped. Every op's result must be the local executor's: the
same bytes for DICOM and image outputs, the same rows for tables, the same error records; a
worker killed mid-job loses and duplicates nothing."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest
from batch_trees import build_tree, mixed_samples, synthetic_archive
from conftest import expect_error, expect_ok, missing
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.job import Job

KEY = "dask-parity-test-key-0123456789abcdef"
# `python -m dask` with this interpreter: the `dask` script's shebang may name another environment
# (a venv made by copying), whose workers would run another checkout's code.
DASK = [sys.executable, "-m", "dask"]
PRELOAD = "dicom_hub.python_backend.batch.dask_preload"
EXECUTOR_KEYS = ("executor", "dask_scheduler", "dask_workers", "dask_dashboard", "duration_s", "partitions")


@dataclass
class Cluster:
    address: str
    folder: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self, name: str, preload: bool = False) -> subprocess.Popen:
        command = [
            *DASK, "worker", self.address,
            "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard",
            "--name", name, "--death-timeout", "30", "--local-directory", str(self.folder),
        ]  # fmt: skip
        if preload:
            command += ["--preload", PRELOAD]
        with open(self.folder / f"{name}.log", "w") as log:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=self.folder)
        self.processes.append(process)
        self.workers[name] = process
        return process

    def wait_for_workers(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=90)

    def stop(self) -> None:
        """Workers are killed (nothing of theirs needs a clean exit), then the scheduler stops."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.kill() if process in self.workers.values() else process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if find_spec("distributed") is None:
        missing("dask.distributed (pip install 'dicom-hub[distributed]')")
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    command = [
        *DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
        "--no-dashboard", "--scheduler-file", str(scheduler_file), "--preload", PRELOAD,
    ]  # fmt: skip
    with open(folder / "scheduler.log", "w") as log:
        scheduler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, cwd=folder)
    running = Cluster("", folder, [scheduler])
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert scheduler.poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.1)
        running.address = json.loads(scheduler_file.read_text())["address"]
        assert running.address.startswith("tcp://127.0.0.1:")
        running.start_worker("w1", preload=True)  # as the README advises; w2 as a plain worker
        running.start_worker("w2")
        running.wait_for_workers(2)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    build_tree(root)  # odd names, clutter, broken and unreadable files, a symlink loop
    synthetic_archive(root / "more", patients=3, slices=4)
    return root


def _run(op: str, archive: Path, output: Path | None, options: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {"op": op, "input": str(archive), "options": options}
    if output is not None:
        request["output"] = str(output)
    return expect_ok(request)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _comparable(metadata: dict[str, Any], output: Path | None) -> dict[str, Any]:
    """Metadata without where it ran, with output paths relative to the output folder."""
    kept = {k: v for k, v in metadata.items() if k not in EXECUTOR_KEYS}
    if output is not None:
        text = json.dumps(kept).replace(str(output), "<out>")
        kept = json.loads(text)
    return kept


OPS: dict[str, tuple[dict[str, Any], bool]] = {
    "batch_list": ({}, False),
    "batch_validate": ({}, False),
    "batch_decompress": ({}, True),
    "batch_convert": ({}, True),
    "batch_anonymize": ({"key": KEY}, True),
    "organize": ({"by": "{PatientID}/{Modality}"}, True),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_on_dask_gives_the_local_result(cluster, archive, tmp_path, op, monkeypatch):
    options, writes = OPS[op]
    local_out, dask_out = (tmp_path / "local", tmp_path / "dask") if writes else (None, None)
    local = _run(op, archive, local_out, {**options, "workers": 2})
    if op == "batch_list":  # the scheduler from the environment
        monkeypatch.setenv("DICOM_HUB_DASK_SCHEDULER", cluster.address)
        remote = _run(op, archive, dask_out, {**options, "executor": "dask"})
        # A running cluster has its own workers: a worker count for it is refused, not ignored.
        expect_error({"op": op, "input": str(archive), "options": {"executor": "dask", "workers": 3}}, "invalid_request")
    else:
        remote = _run(op, archive, dask_out, {**options, "executor": "dask", "scheduler": cluster.address})
    meta = remote["metadata"]
    assert (meta["executor"], meta["dask_scheduler"], meta["dask_workers"]) == ("dask", cluster.address, 2)
    assert local["metadata"]["files_processed"] > 15 and local["metadata"]["files_failed"] >= 2
    assert _comparable(meta, dask_out) == _comparable(local["metadata"], local_out)
    assert remote["stdout"].replace(str(dask_out), "<out>") == local["stdout"].replace(str(local_out), "<out>")
    if writes:
        assert len(remote["output_files"]) == len(local["output_files"]) > 15
        expected = _tree(local_out)
        assert _tree(dask_out) == expected, "outputs differ from the local executor's"


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, sorted(rows)


def test_extract_metadata_csv_on_dask_has_the_local_rows(cluster, archive, tmp_path):
    local = _run("extract_metadata", archive, tmp_path / "local.csv", {"workers": 2})
    remote = _run("extract_metadata", archive, tmp_path / "dask.csv", {"executor": "dask", "scheduler": cluster.address, "chunk_files": 7})
    header, rows = _csv_rows(tmp_path / "local.csv")
    assert _csv_rows(tmp_path / "dask.csv") == (header, rows)
    assert len(rows) == local["metadata"]["rows"] == remote["metadata"]["rows"] > 20
    key = lambda e: e["path"]  # noqa: E731
    assert sorted(remote["metadata"]["errors"], key=key) == sorted(local["metadata"]["errors"], key=key)
    assert remote["metadata"]["files_skipped"] == local["metadata"]["files_skipped"] > 0


def test_extract_metadata_parquet_on_dask_is_one_dataset_with_the_local_rows(cluster, archive, tmp_path):
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    _run("extract_metadata", archive, tmp_path / "local.parquet", {"workers": 2})
    remote = _run("extract_metadata", archive, tmp_path / "dask.parquet", {"executor": "dask", "scheduler": cluster.address, "chunk_files": 7})
    dataset_dir = tmp_path / "dask.parquet"
    parts = sorted(dataset_dir.iterdir())
    assert len(parts) == remote["metadata"]["partitions"] > 2 and all(p.suffix == ".parquet" for p in parts)
    local_table = pq.read_table(tmp_path / "local.parquet")
    assert all(pq.read_schema(p) == local_table.schema for p in parts), "one schema across partitions"
    table = pads.dataset(dataset_dir, format="parquet").to_table()
    assert table.schema == local_table.schema
    by_path = lambda rows: sorted(rows, key=lambda r: r["path"])  # noqa: E731
    assert by_path(table.to_pylist()) == by_path(local_table.to_pylist())

    if find_spec("duckdb") is None:
        missing("duckdb (a dev dependency: pip install -e '.[dev]')")
    import duckdb

    glob = str(dataset_dir / "*.parquet")
    (count, paths), = duckdb.sql(f"select count(*), count(distinct path) from read_parquet('{glob}')").fetchall()
    assert count == paths == local_table.num_rows
    columns = [c for c in local_table.column_names if c != "path"][:3]
    query = "select path, {} from read_parquet('{}') order by path".format(", ".join(f'"{c}"' for c in columns), "{}")
    assert duckdb.sql(query.format(glob)).fetchall() == duckdb.sql(query.format(tmp_path / "local.parquet")).fetchall()


def test_interrupted_extract_on_dask_resumes_by_partition(cluster, archive, tmp_path, monkeypatch):
    from dicom_hub.python_backend.batch import dask_executor, extract_dask
    from dicom_hub.python_backend.batch.extract import extract_metadata

    _run("extract_metadata", archive, tmp_path / "local.csv", {"workers": 1})
    output = tmp_path / "dask.csv"
    options = {"executor": "dask", "scheduler": cluster.address, "chunk_files": 4}
    real = dask_executor.DaskExecutor.map_tasks

    def interrupted(self, function, arguments, window=None, **options):
        for done, result in enumerate(real(self, function, arguments, window, **options)):
            if function is extract_dask.extract_partition and done == 3:
                raise KeyboardInterrupt  # Ctrl-C after three partitions
            yield result

    monkeypatch.setattr(dask_executor.DaskExecutor, "map_tasks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        extract_metadata(Job(op="extract_metadata", inputs=(archive,), output=output, options=options, defaults=get_op("extract_metadata").defaults))
    monkeypatch.undo()
    assert not output.exists()
    data = _run("extract_metadata", archive, output, options)
    assert data["metadata"]["resumed"] and data["metadata"]["chunks_reused"] >= 3
    assert data["metadata"]["chunks_reused"] < data["metadata"]["partitions"] if "partitions" in data["metadata"] else True
    assert _csv_rows(output) == _csv_rows(tmp_path / "local.csv")
    assert output.read_bytes() == (tmp_path / "local.csv").read_bytes(), "the reused partitions are formatted again: the same bytes"


def test_extract_on_dask_starts_before_the_walk_ends(cluster, tmp_path, monkeypatch):
    """A run large enough to stream (50 files, 1 per partition: more than 1 x workers x 8) has its
    first partitions extracted while folders are still being listed, and the rows are the local
    run's. The walk lists one folder per round trip here, so there are many listings to see."""
    from dicom_hub.python_backend.batch import extract_dask
    from dicom_hub.python_backend.batch.dask_executor import DaskExecutor
    from dicom_hub.python_backend.batch.extract import extract_metadata

    root = tmp_path / "archive"
    synthetic_archive(root, patients=5, slices=10)
    _run("extract_metadata", root, tmp_path / "local.csv", {"workers": 1})
    events: list[str] = []
    real_list, real_map = DaskExecutor.list_folders, DaskExecutor.map_tasks

    def list_folders(self, folders, include_raw):
        events.append("list")
        yield from real_list(self, folders, include_raw)

    def map_tasks(self, function, arguments, window=None, priority=0):
        def noted():
            for argument in arguments:
                events.append("extract")
                yield argument

        return real_map(self, function, noted() if function is extract_dask.extract_partition else arguments, window, priority)

    monkeypatch.setattr(DaskExecutor, "walk_lookahead", lambda self: 1)
    monkeypatch.setattr(DaskExecutor, "list_folders", list_folders)
    monkeypatch.setattr(DaskExecutor, "map_tasks", map_tasks)
    output = tmp_path / "dask.csv"
    options = {"executor": "dask", "scheduler": cluster.address, "chunk_files": 1}
    outcome = extract_metadata(Job(op="extract_metadata", inputs=(root,), output=output, options=options, defaults=get_op("extract_metadata").defaults))
    assert outcome.metadata["rows"] == 50 and events.count("extract") == 50
    last_listing = max(i for i, event in enumerate(events) if event == "list")
    assert "extract" in events[:last_listing], "no partition was extracted before the walk's last listing"
    assert _csv_rows(output) == _csv_rows(tmp_path / "local.csv")


def _extract_counting(monkeypatch, root: Path, output: Path, options: dict[str, Any]) -> dict[str, list]:
    """An extract_metadata run in this process on the cluster, with each `map_tasks` call's
    function and results noted."""
    from dicom_hub.python_backend.batch.dask_executor import DaskExecutor
    from dicom_hub.python_backend.batch.extract import extract_metadata

    seen: dict[str, list] = {}
    real = DaskExecutor.map_tasks

    def counting(self, function, arguments, window=None, priority=0):
        for result in real(self, function, arguments, window, priority):
            seen.setdefault(function.__name__, []).append(result)
            yield result

    with monkeypatch.context() as patch:
        patch.setattr(DaskExecutor, "map_tasks", counting)
        extract_metadata(Job(op="extract_metadata", inputs=(root,), output=output, options=options, defaults=get_op("extract_metadata").defaults))
    return seen


def test_extract_of_alike_files_on_dask_formats_each_partition_once(cluster, tmp_path, monkeypatch):
    """Alike files: each partition's task formats its CSV part with the table's columns, the
    client joins them as they are (no formatting task at the end), and the table is the local
    run's, byte for byte."""
    root = tmp_path / "archive"
    synthetic_archive(root, patients=4, slices=10)
    _run("extract_metadata", root, tmp_path / "local.csv", {"workers": 2, "chunk_files": 4})
    seen = _extract_counting(monkeypatch, root, tmp_path / "dask.csv", {"executor": "dask", "scheduler": cluster.address, "chunk_files": 4})
    assert len(seen["extract_partition"]) > 8 and "csv_part" not in seen, "a partition was formatted again at the end"
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()


@pytest.mark.parametrize("escape", [True, False], ids=["escaped", "raw"])
def test_extract_of_mixed_files_on_dask_is_the_local_table_byte_for_byte(cluster, tmp_path, monkeypatch, escape):
    """pydicom's sample files, whose columns differ from partition to partition: the parts
    formatted with other columns than the table's are formatted again, and the table is the
    local run's, byte for byte, with either escaping."""
    root = mixed_samples(tmp_path / "mixed")
    options = {"chunk_files": 2, "escape_formulas": escape}
    _run("extract_metadata", root, tmp_path / "local.csv", {"workers": 1, **options})
    seen = _extract_counting(monkeypatch, root, tmp_path / "dask.csv", {"executor": "dask", "scheduler": cluster.address, **options})
    assert len(seen.get("csv_part", [])) > 0, "the mixed columns made some part stale"
    expected = (tmp_path / "local.csv").read_bytes()
    assert (b"'=HYPERLINK" in expected) is escape
    assert (tmp_path / "dask.csv").read_bytes() == expected


def test_keyed_anonymization_needs_no_shared_state(cluster, archive, tmp_path):
    """Two separate cluster runs over two halves of the archive give, file for file, the bytes of
    one local run over all of it: UIDs, pseudonyms and date offsets come from the key alone."""
    whole = tmp_path / "whole"
    _run("batch_anonymize", archive, whole, {"key": KEY, "workers": 1})
    for half in ("a", "more"):
        _run("batch_anonymize", archive / half, tmp_path / "halves" / half, {"key": KEY, "executor": "dask", "scheduler": cluster.address})
    halves = _tree(tmp_path / "halves")
    assert halves and halves == {k: v for k, v in _tree(whole).items() if k.split("/")[0] in ("a", "more")}


def test_interrupted_batch_on_dask_resumes_with_the_local_result(cluster, archive, tmp_path, monkeypatch):
    """Ctrl-C in the middle of a streamed batch_anonymize on the cluster; the rerun passes the
    journaled files through in their place and gives the local run's response and bytes. Chunks
    stay at one file, so the interruption comes while most files are still to do."""
    from dicom_hub.python_backend.batch import dask_executor, runner
    from dicom_hub.python_backend.deid.ops import batch_anonymize

    local = _run("batch_anonymize", archive, tmp_path / "local", {"key": KEY, "workers": 2})
    output = tmp_path / "dask"
    options = {"key": KEY, "executor": "dask", "scheduler": cluster.address}
    real = runner._RunFiles.resumable

    def interrupted(self, *args):
        done = 0
        for entry in real(self, *args):  # a file passed through, or a chunk of files
            if done >= 12:
                raise KeyboardInterrupt
            done += len(entry.items) if isinstance(entry, runner.ChunkDone) else 1
            yield entry

    monkeypatch.setattr(runner._RunFiles, "resumable", interrupted)
    monkeypatch.setattr(dask_executor, "_MIN_CHUNK", 1)
    monkeypatch.setattr(dask_executor, "_CHUNKS_PER_WORKER", 8)  # one file a chunk for the first 32
    with pytest.raises(KeyboardInterrupt):
        batch_anonymize(Job(op="batch_anonymize", inputs=(archive,), output=output, options=options, defaults=get_op("batch_anonymize").defaults))
    monkeypatch.undo()
    data = _run("batch_anonymize", archive, output, options)
    meta = data["metadata"]
    assert 5 <= meta.pop("files_resumed") < meta["files_processed"]
    assert _comparable(meta, output) == _comparable(local["metadata"], tmp_path / "local")
    assert [p.replace(str(output), "<out>") for p in data["output_files"]] == [p.replace(str(tmp_path / "local"), "<out>") for p in local["output_files"]]
    assert _tree(output) == _tree(tmp_path / "local")


# -- a worker killed in the middle of a job -------------------------------------------------------

_MARKERS = "DICOM_HUB_TEST_MARKERS"


def slow_anonymize(source: Path, target: Path | None, settings: Any) -> Any:
    """anonymize_file, slower, leaving a marker of which worker process ran it."""
    from dicom_hub.python_backend.deid.ops import anonymize_file

    markers = Path(settings[1])
    (markers / f"{os.getpid()}-{source.name}-{time.monotonic_ns()}").touch()
    time.sleep(0.1)
    return anonymize_file(source, target, settings[0])


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(cluster, archive, tmp_path, monkeypatch):
    """Chunks start at one file here, so that the extra worker surely gets some to die on."""
    import cloudpickle
    from dicom_hub.python_backend.batch import dask_executor
    from dicom_hub.python_backend.batch.runner import run_batch
    from dicom_hub.python_backend.deid.ops import settings_from

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests
    monkeypatch.setattr(dask_executor, "_MIN_CHUNK", 1)
    spec = get_op("batch_anonymize")
    local_out, dask_out, markers = tmp_path / "local", tmp_path / "dask", tmp_path / "markers"
    markers.mkdir()
    local = _run("batch_anonymize", archive, local_out, {"key": KEY, "workers": 2})

    victim = cluster.start_worker("victim")
    cluster.wait_for_workers(3)
    job = Job(op="batch_anonymize", inputs=(archive,), output=dask_out, options={"key": KEY, "executor": "dask", "scheduler": cluster.address}, defaults=spec.defaults)
    settings, _ = settings_from(job)

    def kill_when_busy() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len([m for m in markers.iterdir() if m.name.startswith(f"{victim.pid}-")]) >= 2:
                os.kill(victim.pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    outcome = run_batch(job, slow_anonymize, context=(settings, str(markers)))
    killer.join()
    assert victim.wait(timeout=10) == -signal.SIGKILL, "the worker was killed mid-job"

    meta = outcome.metadata
    files = local["metadata"]["files_processed"]
    assert meta["files_processed"] == files and meta["files_failed"] == local["metadata"]["files_failed"]
    assert sorted(meta["errors"], key=lambda e: e["path"]) == sorted(local["metadata"]["errors"], key=lambda e: e["path"])
    assert len(outcome.output_files) == len(set(outcome.output_files)) == files, "each file counted once"
    assert _tree(dask_out) == _tree(local_out), "nothing lost, duplicated or half-written"


# -- the client's memory does not grow with the number of files -----------------------------------


def _tiny_tree(root: Path, files: int, per_folder: int = 20) -> Path:
    """`files` copies of one small CT slice, `per_folder` to a folder, two folder levels."""
    from factories import ct_slice

    root.mkdir(parents=True, exist_ok=True)
    tiny = root / "tiny.dcm"
    ct_slice(rows=4, cols=4).save_as(tiny, enforce_file_format=True)
    data = tiny.read_bytes()
    tree = root / "tree"
    for i in range(files):
        folder = tree / f"p{i // (per_folder * 4):03d}" / f"s{i // per_folder:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.dcm").write_bytes(data)
    return tree


def _working_memory(run: Any) -> tuple[Any, int]:
    """What `run()` returns, and the client's peak memory above what it keeps once done (the
    response: output paths, errors): the memory the work itself needed."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - kept


def copy_file(source: Path, target: Path | None, overwrite: bool) -> None:
    """A per-file function that costs next to nothing (the local pool's forked workers inherit
    the parent's tracemalloc, which makes real work slow)."""
    from dicom_hub.contract.files import atomic_output

    assert target is not None
    with atomic_output(target, overwrite) as tmp:
        tmp.write_bytes(source.read_bytes())


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_client_memory_is_flat_in_the_number_of_files(cluster, tmp_path, executor, monkeypatch):
    """A batch over 100 and 400 files (Dask: batch_anonymize; local: a file copy): the client's
    working memory (its peak minus what the response keeps) stays the same. The chunks in flight
    are made small (4 files) and the walk lists 2 folders (of 20 files) ahead, so both runs are
    far bigger than what the client holds at a time. What may grow is per folder (folders seen,
    output folders to clean): a few bytes per file. Holding the file list and the targets, as
    before the walk was streamed, added 700-800 bytes per file."""
    from dicom_hub.python_backend.batch import dask_executor, runner
    from dicom_hub.python_backend.deid.ops import batch_anonymize

    monkeypatch.setattr(runner, "_MAX_CHUNK", 4)
    monkeypatch.setattr(dask_executor, "_MAX_CHUNK", 4)
    monkeypatch.setattr(dask_executor.DaskExecutor, "walk_lookahead", lambda self: 2)
    spec = get_op("batch_anonymize")
    options: dict[str, Any] = {"key": KEY, "progress": False}
    options |= {"executor": "dask", "scheduler": cluster.address} if executor == "dask" else {"workers": 2}

    def run(files: int, name: str) -> tuple[Any, int]:
        tree = _tiny_tree(tmp_path / name, files)
        job = Job(op="batch_anonymize", inputs=(tree,), output=tmp_path / name / "out", options=options, defaults=spec.defaults)
        if executor == "dask":
            return _working_memory(lambda: batch_anonymize(job))
        return _working_memory(lambda: runner.run_batch(job, copy_file, context=False))

    run(40, "warm")  # imports and caches are kept, not working memory: load them first
    small, small_work = run(100, "small")
    large, large_work = run(400, "large")
    assert (small.metadata["files_processed"], large.metadata["files_processed"]) == (100, 400)
    assert len(large.output_files) == 400 and not large.metadata["errors"]
    grown = large_work - small_work
    assert grown < 300 * 250, f"working memory grew by {grown} bytes for 300 more files ({small_work} -> {large_work})"


def test_a_chunk_travels_as_one_string_and_comes_back_the_same():
    """Odd names (spaces, a newline, non-ASCII) and a file without target survive the packing."""
    from dicom_hub.python_backend.batch.dask_executor import pack_chunk, unpack_chunk

    chunk = [("/a b/c.dcm", "/out/c.dcm"), ("/x/line\nbreak", None), ("/ü/1.2.3", "/o/1.2.3_anon")]
    assert unpack_chunk(pack_chunk(chunk)) == chunk
    assert unpack_chunk(pack_chunk([(Path(s), t and Path(t)) for s, t in chunk])) == chunk, "Paths travel as their strings"
    assert unpack_chunk(pack_chunk([])) == []


@pytest.mark.parametrize(
    ("chunk_files", "workers", "expected_sizes"),
    [(3, 2, [3] * 16 + [2]), (1, 2, [1] * 50), (7, 2, [4] * 12 + [2]), (100, 1, [7] * 7 + [1])],
)
def test_extract_partitions_are_the_walk_cut_in_order(tmp_path, chunk_files, workers, expected_sizes):
    """Discovery cuts the walk's files into partitions, in order, none lost or repeated: a run
    with more than `chunk_files` x workers x 8 files streams partitions of `chunk_files` as it
    goes; a smaller run is held, then cut finer like the local run (`extract.chunk_size`: 50
    files, 2 workers, so 16 partitions wanted: 4 files each)."""
    from dicom_hub.python_backend.batch.discovery import find_dicom_files
    from dicom_hub.python_backend.batch.extract_dask import Discovery, _partition_files
    from dicom_hub.python_backend.batch.runner import LocalExecutor
    from dicom_hub.python_backend.batch.state import RunState

    root = tmp_path / "archive"
    synthetic_archive(root, patients=5, slices=10)
    expected = [str(p) for p in find_dicom_files(root)]
    assert len(expected) == 50
    signature = {"recursive": True, "include_raw": False, "chunk_files": chunk_files}
    with RunState(tmp_path / "table.csv") as state:
        discovery = Discovery(state, signature, LocalExecutor(1), [root], chunk_files, workers)
        indices = list(discovery.partitions())
        run = discovery.run
        parts = [_partition_files(state, k) for k in range(run["partitions"])]
    assert indices == list(range(run["partitions"]))
    assert [len(p) for p in parts] == expected_sizes
    assert [f for part in parts for f in part] == expected and run["files"] == 50


def _worker_state(dask_worker: Any) -> tuple[bool, bool, bool]:
    from dicom_hub.contract.dicom.deid import iods

    callbacks = dask_worker.periodic_callbacks
    loaded = "dicom_hub.python_backend.deid.ops" in sys.modules
    return "profile" in callbacks or "tick" in callbacks, loaded, iods._table.cache_info().currsize == 1


def test_the_preload_loads_the_ops_and_stops_the_profiler_and_tick(cluster):
    """w1 started with `--preload dicom_hub.python_backend.batch.dask_preload`, w2 without: w1
    has the ops' modules loaded (whatever ran before), no sampling profiler and no latency tick;
    w2 has them."""
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests

    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        names = {info["name"]: address for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}
        states = client.run(_worker_state, workers=[names["w1"], names["w2"]])
    assert states[names["w1"]] == (False, True, True), "w1: no callbacks, the ops and the IOD tables loaded"
    assert states[names["w2"]][0] is True, "a plain worker keeps its callbacks"


def _scheduler_ticks(dask_scheduler: Any) -> tuple[float, bool]:
    return dask_scheduler.periodic_callbacks["tick"].callback_time, "dicom_hub.python_backend.deid.ops" in sys.modules


def test_the_preloaded_scheduler_ticks_once_a_second_and_loads_no_op(cluster):
    """The scheduler, started with the same `--preload`, measures its event loop once a second
    (not 50 times) and, running no file, loads none of the ops."""
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        assert client.run_on_scheduler(_scheduler_ticks) == (1000, False)
