"""The parallel runner: output paths, per-file errors, running out of memory, progress."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job
from dicom_hub.python_backend.batch.runner import (
    iter_results,
    plan_targets,
    run_batch,
    runs_in_parent,
    summarize,
)
from peers import children_of

BATCH_DEFAULTS = get_op("batch_convert").defaults  # what the dispatcher gives every job


def test_targets_mirror_the_tree_and_keep_dicom_extensions(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    files = [src / "a" / "x.dcm", src / "a" / "b" / "y.IMA", src / "1.2.3.45", src / "z"]
    targets = plan_targets(files, [src], out, suffix="_s")
    assert targets == [out / "a" / "x_s.dcm", out / "a" / "b" / "y_s.IMA", out / "1.2.3.45_s", out / "z_s"]
    assert plan_targets(files, [src], out, extension=".png") == [out / "a" / "x.png", out / "a" / "b" / "y.png", out / "1.2.3.45.png", out / "z.png"]


def test_flat_targets_never_collide(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    files = [src / "a" / "x.dcm", src / "b" / "x.dcm", src / "c" / "x.dcm"]
    assert plan_targets(files, [src], out, preserve_tree=False) == [out / "x.dcm", out / "x_2.dcm", out / "x_3.dcm"]


def _write_or_fail(source: Path, target: Path | None, overwrite: bool) -> dict:
    text = source.read_text()
    with atomic_output(target, overwrite) as tmp:
        tmp.write_text(text.upper())
        if "bad" in text:
            raise HubError(ErrorCode.DECODE_ERROR, f"cannot parse {source.name}")
    return {"length": len(text)}


def _raise_os_error(source: Path, target: Path | None, context: object) -> None:
    raise PermissionError(13, "Permission denied", str(source))


def _raise_memory(source: Path, target: Path | None, context: object) -> None:
    if source.name == "b.dcm":
        raise MemoryError


def _make(folder: Path, names: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in names.items():
        (folder / name).write_text(text)


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_files_leave_nothing_and_do_not_stop_the_batch(tmp_path, workers):
    _make(tmp_path / "in", {"a.dcm": "good", "b.dcm": "bad", "c.dcm": "fine"})
    job = Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out", options={"workers": workers, "suffix": "_x"})
    outcome = run_batch(job, _write_or_fail, context=False)
    meta = outcome.metadata
    assert (meta["files_processed"], meta["files_failed"], meta["files_skipped"]) == (2, 1, 0)
    assert meta["errors"] == [{"path": str(tmp_path / "in" / "b.dcm"), "code": "decode_error", "message": "cannot parse b.dcm"}]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x.dcm", "c_x.dcm"]  # no b, no temp file
    assert (tmp_path / "out" / "c_x.dcm").read_text() == "FINE"
    assert meta["results"] == [{"path": str(tmp_path / "in" / "a.dcm"), "length": 4}, {"path": str(tmp_path / "in" / "c.dcm"), "length": 4}]


def test_existing_outputs_are_per_file_errors_without_overwrite(tmp_path):
    _make(tmp_path / "in", {"a.dcm": "one", "b.dcm": "two"})
    _make(tmp_path / "out", {"a.dcm": "keep me"})
    outcome = run_batch(Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out", options={"workers": 1}), _write_or_fail, context=False)
    assert [e["code"] for e in outcome.metadata["errors"]] == ["output_exists"]
    assert (tmp_path / "out" / "a.dcm").read_text() == "keep me"
    assert (tmp_path / "out" / "b.dcm").read_text() == "TWO"


def test_os_errors_are_reported_with_a_code(tmp_path):
    _make(tmp_path, {"a.dcm": "x"})
    (outcome,) = iter_results([(tmp_path / "a.dcm", None)], _raise_os_error)
    assert outcome.error.code == "input_not_found"
    assert "Permission denied" in outcome.error.message


@pytest.mark.parametrize("workers", [1, 2])
def test_running_out_of_memory_aborts_the_batch(tmp_path, workers):
    _make(tmp_path, {"a.dcm": "", "b.dcm": "", "c.dcm": ""})
    items = [(tmp_path / n, None) for n in ("a.dcm", "b.dcm", "c.dcm")]
    with pytest.raises(HubError) as info:
        list(iter_results(items, _raise_memory, workers=workers))
    assert info.value.code is ErrorCode.BACKEND_ERROR
    assert "memory" in info.value.message and "workers" in info.value.hint


def test_parallel_results_come_in_input_order(tmp_path):
    names = {f"{i:03d}.dcm": "x" * (i + 1) for i in range(40)}
    _make(tmp_path, names)
    items = [(tmp_path / n, tmp_path / "o" / n) for n in sorted(names)]
    serial = summarize(iter_results(items, _write_or_fail, False, workers=1))
    parallel_items = [(s, tmp_path / "p" / s.name) for s, _ in items]
    parallel = summarize(iter_results(parallel_items, _write_or_fail, False, workers=2))
    assert serial.metadata["results"] == parallel.metadata["results"]
    assert [Path(p).name for p in parallel.output_files] == sorted(names)


@runs_in_parent
def _write_where_run(source: Path, target: Path | None, context: object) -> dict:
    _write_or_fail(source, target, False)
    return {"pid": os.getpid()}


def test_the_parent_runs_files_too_when_the_function_allows_it(tmp_path):
    """`runs_in_parent`: with 2 workers, the parent and one forked worker share the files; every
    file is done once, the outcomes come in input order, the outputs are the serial run's."""
    names = {f"{i:03d}.dcm": "x" * (i + 1) for i in range(60)}
    _make(tmp_path, names)
    items = [(tmp_path / n, tmp_path / "o" / n) for n in sorted(names)]
    outcomes = list(iter_results(items, _write_where_run, workers=2))
    assert [o.source.name for o in outcomes] == sorted(names) and all(o.ok for o in outcomes)
    pids = [o.value["pid"] for o in outcomes]
    assert os.getpid() in pids, "the parent ran files"
    assert len(set(pids)) == 2, "and one worker (not two) ran the others"
    assert {p.name: p.read_text() for p in (tmp_path / "o").iterdir()} == {n: t.upper() for n, t in names.items()}


def _large_result(source: Path, target: Path | None, context: object) -> dict:
    return {"name": source.name, "data": source.name * 20_000}  # ~140 KB: more than a pipe holds


def test_large_results_neither_block_the_workers_nor_outlive_the_run(tmp_path):
    """Workers whose results fill their pipe while the parent is sending them more work: the
    parent reads as it sends, every result arrives whole and in order, and no worker is left
    (not even a zombie) once the run is over."""
    names = [f"{i:03d}.dcm" for i in range(48)]
    _make(tmp_path, dict.fromkeys(names, "x"))
    before = children_of(os.getpid())
    outcomes = list(iter_results([(tmp_path / n, None) for n in names], _large_result, workers=2))
    assert [o.value["name"] for o in outcomes] == names
    assert all(o.value["data"] == o.value["name"] * 20_000 for o in outcomes)
    assert children_of(os.getpid()) - before == set()


def _write_unless_told_not_to(source: Path, target: Path | None, overwrite: bool) -> None:
    """Succeeds without writing for a file named `keep*` (as an op may that writes elsewhere)."""
    if not source.name.startswith("keep"):
        _write_or_fail(source, target, overwrite)


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_of_plain_successes_fold_as_their_files_would(tmp_path, workers):
    """A chunk whose files all succeeded plainly comes back from its worker as None and is folded
    at once; a chunk with an error, a value or an unwritten target comes back file by file. The
    response and the journal are the ones a file-by-file fold gives: outputs that exist (not a
    target left unwritten), errors and values in input order, one journal line per output."""
    from dicom_hub.python_backend.batch.runner import _journal_line, _plain_journal_line, run_files

    names = {f"{i:03d}.dcm": "x" for i in range(40)} | {"017.dcm": "bad", "keep.dcm": "x"}
    _make(tmp_path / "in", names)
    items = [(str(tmp_path / "in" / n), str(tmp_path / "o" / n)) for n in sorted(names)]
    assert run_files(_write_unless_told_not_to, False, items[:5], False) is None, "plain: nothing to send back"
    (tmp_path / "o").mkdir(exist_ok=True)
    results = run_files(_write_unless_told_not_to, False, [items[-1]], False)
    assert results == [(None, None, False, False)], "keep.dcm succeeded, its target not written"

    job = Job(op="batch_decompress", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out", options={"workers": workers, "suffix": ""})
    outcome = run_batch(job, _write_unless_told_not_to, context=False)
    meta = outcome.metadata
    written = sorted(n for n in names if n not in ("017.dcm", "keep.dcm"))
    assert outcome.output_files == [str(tmp_path / "out" / n) for n in written]
    assert (meta["files_processed"], meta["files_failed"]) == (40, 1) and meta["errors"][0]["path"].endswith("017.dcm")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written
    for target in ("/a b/ü.dcm", '/q"uote\\/x.dcm', "/line\nbreak/1.2.3"):
        assert _plain_journal_line(target) == _journal_line({"t": target, "v": None})


def test_no_progress_output_when_stderr_is_not_a_terminal(tmp_path, capsys):
    _make(tmp_path / "in", {"a.dcm": "x"})
    run_batch(Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out", options={"workers": 1}), _write_or_fail, context=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_goes_to_stderr_on_a_terminal(tmp_path, capsys, monkeypatch):
    import sys

    _make(tmp_path / "in", {"a.dcm": "x", "b.dcm": "y"})
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    job = Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out", options={"workers": 1})
    run_batch(job, _write_or_fail, context=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "2/2" in captured.err
    job = Job(op="batch_convert", defaults=BATCH_DEFAULTS, inputs=(tmp_path / "in",), output=tmp_path / "out2", options={"workers": 1, "progress": False})
    run_batch(job, _write_or_fail, context=False)
    assert capsys.readouterr().err == ""


_TEST_PROCESS = os.getpid()


@runs_in_parent
def _pid_slow_or_crash(source: Path, target: Path | None, context: object) -> dict:
    """Where a file ran; `slow.dcm` keeps its worker busy, `crash.dcm` takes down a worker."""
    if source.name == "slow.dcm":
        import time

        time.sleep(0.5)
    if source.name == "crash.dcm" and os.getpid() != _TEST_PROCESS:
        os._exit(9)
    return {"pid": os.getpid()}


def _shares_with_one_worker():
    from dicom_hub.python_backend.batch.runner import ChunkWindow, _Pool, _Shares

    pool = _Pool(1, _pid_slow_or_crash, None, False)
    shares = _Shares(pool, _pid_slow_or_crash, None, False, 1)
    shares.window = ChunkWindow(shares.submit, 2, 6, 32, None)
    return pool, shares


def _chunk(tmp_path, names):
    for name in names:
        (tmp_path / name).write_text(name)
    return [(tmp_path / name, None) for name in names]


def test_the_parent_s_chunk_is_shared_when_the_workers_are_idle(tmp_path):
    """The end of a batch: the parent holds a chunk and the worker nothing; the chunk's second half
    goes to the worker, the results stay in the chunk's order."""
    from dicom_hub.python_backend.batch.runner import _InParent

    pool, shares = _shares_with_one_worker()
    try:
        chunk = _chunk(tmp_path, [f"{i}.dcm" for i in range(6)])
        results = _InParent(chunk, _pid_slow_or_crash, None, False, shares).result()
        assert results is not None and [error for _, error, _, _ in results] == [None] * 6
        pids = [value["pid"] for value, _, _, _ in results]
        assert pids[:3] == [_TEST_PROCESS] * 3
        assert len(set(pids[3:])) == 1 and pids[3] != _TEST_PROCESS, "the second half ran in the worker"
        assert not shares.offloaded
    finally:
        pool.close(wait=True)


def test_the_parent_keeps_its_chunk_while_a_worker_is_busy(tmp_path):
    from dicom_hub.python_backend.batch.runner import _InParent

    pool, shares = _shares_with_one_worker()
    try:
        busy = _chunk(tmp_path, ["slow.dcm"])
        assert shares.window is not None
        shares.window.pending.append((busy, pool.submit(busy)))
        chunk = _chunk(tmp_path, [f"{i}.dcm" for i in range(4)])
        results = _InParent(chunk, _pid_slow_or_crash, None, False, shares).result()
        assert results is not None and [value["pid"] for value, _, _, _ in results] == [_TEST_PROCESS] * 4
        assert shares.window.pending[0][1].result()[0][0]["pid"] != _TEST_PROCESS
    finally:
        pool.close(wait=True)


def test_a_worker_dying_on_a_shared_half_costs_only_its_file(tmp_path):
    from dicom_hub.python_backend.batch.runner import _InParent

    pool, shares = _shares_with_one_worker()
    try:
        chunk = _chunk(tmp_path, ["0.dcm", "1.dcm", "crash.dcm", "3.dcm"])
        results = _InParent(chunk, _pid_slow_or_crash, None, False, shares).result()
        assert results is not None
        assert [(error.path.endswith("crash.dcm"), error.code) for _, error, _, _ in results if error is not None] == [(True, "backend_error")]
        assert [value is not None for value, _, _, _ in results] == [True, True, False, True]
    finally:
        pool.close(wait=False)
