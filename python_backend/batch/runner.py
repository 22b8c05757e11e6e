"""Running one per-file function over many files, on every core, without letting one bad file
stop the rest.

API (for batch op authors)
--------------------------
Write a *module-level* per-file function (it is sent to worker processes, so it must pickle)::

    def anonymize_one(source: Path, target: Path | None, context: MyContext) -> dict | None:
        ds = read_dataset(source)                     # raise HubError on failure
        ...
        write_dataset(ds, target, overwrite=context.overwrite)   # atomic: temp file + rename
        return {"patient_id": ...}                    # optional, JSON-able; None is fine

and call it from the op::

    def batch_anonymize(job: Job) -> Outcome:
        return run_batch(job, anonymize_one, context=MyContext(...))

`run_batch(job, func, *, context=None, extension=None, writes_output=True,
describe="...")` does everything around the function:
- finds the files (`job.inputs`: folders and/or files; options `recursive` (default true) and
  `include_raw`) with `discovery.walk_tree`, streamed: files are planned and sent to the
  executor as the walk finds them, outcomes folded into the response as they come back, so the
  client never holds the file list (only what the response itself lists);
- maps each input file to its output path (`TargetPlanner`): `<output>/<relative folder if
  options.preserve_tree (default true)>/<stem><options.suffix (each op's catalog default)><extension or the
  file's own DICOM extension>`; two inputs that would land on the same path get `_2`, `_3`, ...;
  `writes_output=False` (ops without output) passes `target=None`;
- runs `func(source, target, context)` for each file on `options.executor` (`executors.py`):
  `local`, `options.workers` processes (default: all cores; 1 runs in-process) that die with
  this process (`lifetime.py`), or `dask`, tasks on a Dask cluster; in bounded windows so memory
  does not grow with the file count; a function marked `runs_in_parent` (pure Python, cannot
  crash its process) has the parent run part of the files itself, with one worker fewer;
- catches every per-file exception, `BaseException`s such as a Rust panic included: `HubError`
  keeps its code, `OSError` becomes `input_not_found` / `output_error`, anything else
  `internal_error`; a worker process that dies (a crash in native code, the OOM killer) costs
  only the file it was on (`backend_error`); the batch goes on;
- aborts on `MemoryError` with a `backend_error` that says to lower `options.workers`;
- resumes: the run state next to the output (`state.py`) journals every finished output (a few
  lines per write, at most 0.2 s late), so the same request after an interruption skips them
  (`files_resumed`); an output that exists
  without a journal line is rewritten beside itself and kept when the bytes are the same (a
  killed worker's last file, a Dask task retried), else it is the file's `output_exists` error;
  temp files a killed run left for this run's outputs are removed; the journal of a resumed run
  is read into memory (one entry per finished file);
- shows a tqdm bar on stderr only when stderr is a terminal and `options.progress` is not false;
- returns an `Outcome`: `output_files` (targets that exist after success) and metadata
  `files_processed`, `files_skipped` (looked at, not DICOM), `files_failed`, `errors` (each
  `{path, code, message}`) and `results` (`{path, **value}` for each non-None return value).

"Nothing is written for a failed file" is the per-file function's half of the contract: write
through `contract.files.atomic_output` / `contract.dicom.part10.write_dataset`, never to `target` directly.

Lower-level pieces, for ops that stream results themselves (e.g. `extract_metadata`):
`iter_results(items, func, context, workers, progress, describe)` yields a `FileOutcome` per
`(source, target)` pair, in input order, as soon as it is ready. `ChunkWindow` is the bounded,
ordered window of chunks both executors run files through.

What the client does per file is kept small, since on Dask it is the one process that sees every
file: `run_batch` plans and sends paths as strings, a worker sends a chunk back as `None` when
every file in it succeeded plainly (no value, output written: nearly all of them), and such a
chunk is folded into the response and the journal at once (`iter_chunks`, `ChunkDone`,
`Summary`); only the files of a chunk with an error or a value are looked at one by one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from .discovery import DICOM_EXTENSIONS, FolderListing, Found, list_folder, suffix_of, walk_tree
from .state import RunState, temporaries_by_name

FileFunc = Callable[[Path, "Path | None", Any], Any]
Executor = Any  # LocalExecutor or dask_executor.DaskExecutor: run(items, func, context, verify, total)

# Chunks in flight per worker: enough to keep every core busy, few enough to bound memory.
_WINDOW_PER_WORKER = 3
_MAX_CHUNK = 32
# The smallest chunk of the local pool: a chunk costs the parent and a worker pickling, pipe
# writes and wake-ups (as much as a small file); 4 files keep that small and the workers even.
_MIN_CHUNK = 4
# Chunks of the run per worker, at least, while the files allow: the last ones are small enough
# that no worker waits long for another's.
_CHUNKS_PER_WORKER = 8


@dataclass(frozen=True)
class FileError:
    """Why one file failed; reported in `metadata.errors`."""

    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file: the function's return value, or the error. `source` and
    `target` are what the caller gave: Paths, or their strings (`run_batch`)."""

    source: Any
    target: Any
    value: Any = None
    error: FileError | None = None
    reused: bool = False  # the output was already there, written by an interrupted run

    @property
    def ok(self) -> bool:
        return self.error is None


# What an executor is given per file: `(source, target)` to run (Paths or strings), or the outcome
# of a file done by an interrupted run (passed through in its place).
WorkItem = tuple[Any, Any] | FileOutcome
# One file's result as a worker sends it back: (value, error, reused, written); `written`: the
# file succeeded and its target exists.
FileResult = tuple[Any, "FileError | None", bool, bool]


class ChunkDone:
    """A chunk's files and how each went. `results` is None when every file succeeded plainly (no
    value, not an earlier run's output, its target written if it has one), which is how nearly
    every chunk comes back and costs the client the least; else one `FileResult` per file."""

    __slots__ = ("items", "results")

    def __init__(self, items: list[tuple[Any, Any]], results: list[FileResult] | None) -> None:
        self.items, self.results = items, results

    def file_results(self) -> list[FileResult]:
        return self.results if self.results is not None else plain_results(self.items)

    def outcomes(self) -> Iterator[FileOutcome]:
        for (source, target), (value, error, reused, _) in zip(self.items, self.file_results(), strict=True):
            yield FileOutcome(source, target, value, error, reused)


def plain_results(items: list[tuple[Any, Any]]) -> list[FileResult]:
    """The results a plain chunk (`ChunkDone.results` None) stands for."""
    return [(None, None, False, target is not None) for _, target in items]


def expand(entries: Iterable[FileOutcome | ChunkDone]) -> Iterator[FileOutcome]:
    """Chunks as one `FileOutcome` per file."""
    for entry in entries:
        if isinstance(entry, FileOutcome):
            yield entry
        else:
            yield from entry.outcomes()


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def workers_option(job: Job) -> int:
    given = job.option("workers")
    return int(given) if given else default_workers()


def show_progress(job: Job) -> bool:
    """A bar only for a person watching: stderr is a terminal and the user did not say no."""
    return job.option("progress") is not False and sys.stderr.isatty()


def run_batch(
    job: Job,
    func: FileFunc,
    *,
    context: Any = None,
    extension: str | None = None,
    writes_output: bool = True,
    describe: str | None = None,
) -> Outcome:
    """Discover, plan, run `func` on every file, and summarise (see the module docstring)."""
    from .executors import executor_for

    with executor_for(job) as executor:
        found = discover(job, executor)
        outcome = _run_batch(job, func, context, executor, found, extension, writes_output, describe)
        outcome.metadata.update(executor_metadata(executor))
        return outcome


def discover(job: Job, executor: Any) -> Found:
    """The job's files, streamed in sorted order (`discovery.walk_tree`), the folder listings done
    by the executor (Dask: tasks on the cluster, listed ahead of the walk; local: here)."""
    recursive, include_raw = bool(job.option("recursive", True)), bool(job.option("include_raw"))

    def list_folders(folders: list[str]) -> Iterable[FolderListing]:
        return executor.list_folders(folders, include_raw)

    return Found(walk_tree(list_folders, job.inputs, recursive, executor.walk_lookahead()))


def executor_metadata(executor: Any) -> dict[str, Any]:
    """What the response says about where the work ran (nothing extra for the local pool)."""
    describe = getattr(executor, "describe", None)
    return describe() if describe is not None else {}


def _run_batch(
    job: Job, func: FileFunc, context: Any, executor: Any, found: Found, extension: str | None, writes_output: bool, describe: str | None
) -> Outcome:
    run = _RunFiles(job, func, context, executor, show_progress(job), describe or job.op)
    skipped = lambda: found.files_skipped  # noqa: E731 - known once the walk is done
    if not writes_output:
        return Summary().fold(run.chunks((f, None) for f in found.names())).outcome(skipped)
    if job.output is None:
        raise HubError(ErrorCode.INVALID_REQUEST, f"op {job.op!r} needs an output folder", "set 'output' to a folder")
    suffix = job.option("suffix")
    preserve_tree = bool(job.option("preserve_tree"))
    targets = TargetPlanner(job.inputs, job.output, suffix=suffix, extension=extension, preserve_tree=preserve_tree, sorted_input=True)
    _make_folder(job.output)
    signature = {
        "op": job.op,
        "function": f"{func.__module__}.{func.__qualname__}",
        "inputs": [str(p) for p in job.inputs],
        "recursive": bool(job.option("recursive", True)),
        "include_raw": bool(job.option("include_raw")),
        "suffix": suffix,
        "extension": extension,
        "preserve_tree": preserve_tree,
        "context": fingerprint(context),
    }
    leftovers = _Temporaries()
    with RunState(job.output, job.op) as state:
        items = ((source, targets.target(source)) for source in found.names())
        outcome = Summary().fold(run.resumable(state, signature, items, leftovers)).outcome(skipped)
        leftovers.remove_after(outcome.output_files)  # left by a worker that died mid-write in this run
        state.remove()
    return outcome


class _RunFiles:
    """One batch's files through one executor, with the journal that makes a rerun resume."""

    def __init__(self, job: Job, func: FileFunc, context: Any, executor: Any, progress: bool, describe: str) -> None:
        self.job, self.func, self.context, self.executor = job, func, context, executor
        self.progress, self.describe = progress, describe

    def chunks(self, items: Iterable[WorkItem], verify: bool = False) -> Iterator[FileOutcome | ChunkDone]:
        return iter_chunks(items, self.func, self.context, progress=self.progress, describe=self.describe, executor=self.executor, verify_existing=verify)

    def resumable(self, state: RunState, signature: dict[str, Any], items: Iterable[tuple[str, str]], leftovers: _Temporaries) -> Iterator[FileOutcome | ChunkDone]:
        """Outputs journaled by an interrupted run of the same request are kept, not redone: they
        pass through the executor's window in their place, so the order is the input order."""
        saved = state.load_run()
        if saved is None or saved.get("signature") != signature:
            state.forget_journal()
            state.save_run({"signature": signature}, durable=False)
            done: dict[str, Any] = {}
        else:
            done = state.read_journal()

        def planned() -> Iterator[WorkItem]:
            for source, target in items:
                leftovers.remove_before(target)
                if done and target in done:
                    if os.path.isfile(target):
                        yield FileOutcome(source, target, done[target], reused=True)
                        continue
                    del done[target]  # journaled, but gone since: done again (and journaled again)
                yield source, target

        with open(state.journal_path, "a", encoding="utf-8") as journal:
            lines = _JournalLines(journal)
            try:
                for entry in self.chunks(planned(), verify=not self.job.overwrite):
                    if isinstance(entry, FileOutcome):
                        pass  # an output journaled by the interrupted run
                    elif entry.results is None:  # the common case: each line at C speed
                        lines.add_many([_plain_journal_line(target) for _, target in entry.items])
                    else:
                        for (_, target), (value, error, _, _) in zip(entry.items, entry.results, strict=True):
                            if error is not None:
                                leftovers.failed.append(target)
                            elif target not in done:
                                lines.add(_journal_line({"t": target, "v": value}))
                    yield entry
            finally:  # Ctrl-C included: what is done is journaled
                lines.flush()


class _JournalLines:
    """The journal's lines, written in batches (a few per system call, at most `_JOURNAL_DELAY_S`
    late): a line lost to a kill only costs its output a check on resume, since an output without a
    journal line is rewritten beside itself and compared."""

    def __init__(self, journal: Any) -> None:
        import time

        self.journal, self.clock = journal, time.monotonic
        self.lines: list[str] = []
        self.since = self.clock()

    def add(self, line: str) -> None:
        self.lines.append(line)
        if len(self.lines) >= _JOURNAL_BATCH or self.clock() - self.since >= _JOURNAL_DELAY_S:
            self.flush()

    def add_many(self, lines: list[str]) -> None:
        """A chunk's lines: a chunk is done at once, so it is written at once."""
        self.lines.extend(lines)
        self.flush()

    def flush(self) -> None:
        if self.lines:
            self.journal.write("\n".join(self.lines) + "\n")
            self.journal.flush()
            self.lines.clear()
        self.since = self.clock()


_journal_line = json.JSONEncoder(default=str).encode  # json.dumps(..., default=str), one encoder for the run
_json_string = json.encoder.encode_basestring_ascii  # what that encoder writes for a str
_JOURNAL_BATCH = 64
_JOURNAL_DELAY_S = 0.2


def _plain_journal_line(target: str) -> str:
    """`_journal_line({"t": target, "v": None})`, without building the dict."""
    return '{"t": ' + _json_string(target) + ', "v": null}'


class _Temporaries:
    """Temp files a killed run (or a worker that died in this one) left beside this run's outputs.

    Each output folder is looked at when its first target is planned: what is there then is a
    former run's, removed just before the output it was for is written (names of other outputs
    are left alone). After the run, the folders are looked at again, and temp files for this
    run's outputs (written or failed) are removed. Holds the folders and the few temp files
    found, not the outputs' names.
    """

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, list[str]]] = {}
        self.failed: list[str] = []  # targets of failed files (their temp files are ours too)

    def remove_before(self, target: str) -> None:
        folder, name = os.path.split(target)
        found = self.folders.get(folder)
        if found is None:
            found = self.folders[folder] = temporaries_by_name(Path(folder))
        if found:
            for path in found.pop(name, ()):
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def remove_after(self, written: Iterable[str]) -> None:
        left = {os.path.join(folder, name): paths for folder in self.folders for name, paths in temporaries_by_name(Path(folder)).items()}
        if not left:
            return
        for target in itertools.chain(written, self.failed):
            for path in left.pop(target, ()):
                with contextlib.suppress(OSError):
                    os.unlink(path)


def fingerprint(value: Any) -> str:
    """A stable digest of a per-file context (a dataclass of settings); secrets stay out of the
    state folder because only the digest is saved."""
    import dataclasses
    import hashlib

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {"type": type(value).__qualname__, **dataclasses.asdict(value)}
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def summarize(outcomes: Iterable[FileOutcome | ChunkDone], skipped: int | Callable[[], int] = 0) -> Outcome:
    """Fold per-file outcomes into the batch response shape, as they come (`skipped` may be
    asked for once they are all in: a streamed walk knows it only then)."""
    return Summary().fold(outcomes).outcome(skipped)


class Summary:
    """The batch response, folded as outcomes come: a file at a time, or a plain chunk at once
    (its targets are the outputs; nothing else to look at)."""

    def __init__(self) -> None:
        self.output_files: list[str] = []
        self.errors: list[dict[str, str]] = []
        self.results: list[dict[str, Any]] = []
        self.processed = self.resumed = 0

    def fold(self, entries: Iterable[FileOutcome | ChunkDone]) -> Summary:
        for entry in entries:
            if isinstance(entry, FileOutcome):
                written = entry.error is None and entry.target is not None and os.path.exists(entry.target)
                self._add(entry.source, entry.target, entry.value, entry.error, entry.reused, written)
            elif entry.results is None:
                self.processed += len(entry.items)
                self.output_files.extend([str(target) for _, target in entry.items if target is not None])
            else:
                for (source, target), result in zip(entry.items, entry.results, strict=True):
                    self._add(source, target, *result)
        return self

    def _add(self, source: Any, target: Any, value: Any, error: FileError | None, reused: bool, written: bool) -> None:
        if error is not None:
            self.errors.append(error.as_dict())
            return
        self.processed += 1
        self.resumed += reused
        if written:
            self.output_files.append(str(target))
        if value is not None:
            self.results.append({"path": str(source), **(value if isinstance(value, dict) else {"value": value})})

    def outcome(self, skipped: int | Callable[[], int] = 0) -> Outcome:
        metadata: dict[str, Any] = {
            "files_processed": self.processed,
            "files_skipped": skipped() if callable(skipped) else skipped,
            "files_failed": len(self.errors),
            "errors": self.errors,
        }
        if self.resumed:
            metadata["files_resumed"] = self.resumed
        if self.results:
            metadata["results"] = self.results
        return Outcome(metadata=metadata, output_files=self.output_files)


def plan_targets(
    files: Sequence[Path],
    roots: Sequence[Path],
    output: Path,
    *,
    suffix: str = "",
    extension: str | None = None,
    preserve_tree: bool = True,
) -> list[Path]:
    """One output path per input file, all distinct, all inside `output` (`TargetPlanner`)."""
    planner = TargetPlanner(roots, output, suffix=suffix, extension=extension, preserve_tree=preserve_tree)
    return [Path(planner.target(file)) for file in files]


class TargetPlanner:
    """Output paths for input files given one at a time, all distinct, all inside `output`.

    The relative folder comes from the input folder the file was found in (a file given by name
    has none). A DICOM extension is kept (`a.IMA` -> `a_suffix.IMA`); other names are kept whole
    (UID-named files such as `1.2.3.45` -> `1.2.3.45_suffix`), then `extension` replaces the
    extension when given (`.png`). Two files that would land on the same path get `_2`, `_3`, ...
    in the order they come.

    It remembers the names taken in each output folder. With `sorted_input` (files in sorted
    order, as a walk gives them) from one input folder into a mirrored tree, an output folder
    is forgotten once the files have left its input folder's subtree (they never come back), so
    it holds the names of the folders on the current path only; otherwise it holds every name.

    Paths are strings: a file's target is its output folder's (worked out once per input
    folder) and a name, `str(folder / name)` without a Path per file.
    """

    def __init__(
        self, roots: Sequence[Path], output: Path, *, suffix: str = "", extension: str | None = None, preserve_tree: bool = True, sorted_input: bool = False
    ) -> None:
        self.roots, self.output, self.suffix, self.extension, self.preserve_tree = list(roots), output, suffix, extension, preserve_tree
        self.taken: dict[Path, set[str]] = {}
        self.forget = sorted_input and preserve_tree and len(self.roots) == 1 and self.roots[0].is_dir()
        self.current: Path | None = None
        # The last input folder's output folder (as a prefix `<folder>/`) and the names taken in it
        # (a walk gives a folder's files one after another).
        self._last: tuple[str, str, set[str]] | None = None

    def target(self, file: Path | str) -> str:
        parent, file_name = os.path.split(file)
        if self._last is None or self._last[0] != parent:
            folder, taken = self._folder(Path(file))
            prefix = str(folder)
            self._last = (parent, prefix if prefix.endswith(os.sep) else prefix + os.sep, taken)
        _, prefix, taken = self._last
        own_ext = suffix_of(file_name)
        if own_ext.lower() not in DICOM_EXTENSIONS:
            own_ext = ""
        stem = file_name[: len(file_name) - len(own_ext)] if own_ext else file_name
        ext = own_ext if self.extension is None else self.extension
        name, n = f"{stem}{self.suffix}{ext}", 2
        while name in taken:
            name, n = f"{stem}{self.suffix}_{n}{ext}", n + 1
        taken.add(name)
        return prefix + name

    def _folder(self, file: Path) -> tuple[Path, set[str]]:
        """The output folder of `file`'s folder, and the names taken in it."""
        root = next((r for r in self.roots if r in file.parents), file.parent)
        folder = self.output / file.parent.relative_to(root) if self.preserve_tree else self.output
        if self.forget and folder != self.current:
            self.current = folder
            for done in [f for f in self.taken if f != folder and f not in folder.parents]:
                del self.taken[done]
        return folder, self.taken.setdefault(folder, set())


def iter_results(
    items: Iterable[WorkItem],
    func: FileFunc,
    context: Any = None,
    workers: int = 1,
    progress: bool = False,
    describe: str = "",
    *,
    executor: Executor | None = None,
    verify_existing: bool = False,
    total: int | None = None,
) -> Iterator[FileOutcome]:
    """`func(source, target, context)` for each pair, in order; parallel when `workers` > 1.

    `items` may be a stream (a walk's files): it is read as the work goes, never held whole; a
    `FileOutcome` among them (a file done by an interrupted run) comes back in its place.
    `executor` runs the files elsewhere (`executors.executor_for`); default: a local process pool
    of `workers`. With `verify_existing`, a target that already exists is not an error when this
    run would write the very same bytes (a rerun after an interruption): see `_attempt`.
    """
    return expand(iter_chunks(items, func, context, workers, progress, describe, executor=executor, verify_existing=verify_existing, total=total))


def iter_chunks(
    items: Iterable[WorkItem],
    func: FileFunc,
    context: Any = None,
    workers: int = 1,
    progress: bool = False,
    describe: str = "",
    *,
    executor: Executor | None = None,
    verify_existing: bool = False,
    total: int | None = None,
) -> Iterator[FileOutcome | ChunkDone]:
    """`iter_results` a chunk at a time: each file passed through as a `FileOutcome` comes back
    as one, the others in `ChunkDone`s, in order."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    bar = _progress_bar(total, progress, describe)
    runner = executor or LocalExecutor(workers)
    try:
        # The bar moves before each yield: a consumer may stop asking after the last file.
        for entry in runner.run_chunks(_counted(items, bar) if total is None and progress else items, func, context, verify_existing, total):
            bar.update(1 if isinstance(entry, FileOutcome) else len(entry.items))
            yield entry
    except MemoryError:
        raise _out_of_memory() from None
    finally:
        bar.close()
        if executor is None:
            runner.close()


def _counted(items: Iterable[WorkItem], bar: Any) -> Iterator[WorkItem]:
    """A stream of unknown length: the bar's total is the number of files found so far."""
    for item in items:
        bar.total += 1
        yield item


class LocalExecutor:
    """The default: a process pool on this machine (in-process for one worker or one file)."""

    name = "local"
    dashboard_link: str | None = None

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._tasks: Any = None  # the pool of `map_tasks`, started on first use

    def run(self, items: Iterable[WorkItem], func: FileFunc, context: Any, verify: bool, total: int | None = None) -> Iterator[FileOutcome]:
        return expand(self.run_chunks(items, func, context, verify, total))

    def run_chunks(self, items: Iterable[WorkItem], func: FileFunc, context: Any, verify: bool, total: int | None = None) -> Iterator[FileOutcome | ChunkDone]:
        items = iter(items)
        head = list(itertools.islice(items, 2))
        if self.workers <= 1 or len(head) <= 1:
            for item in itertools.chain(head, items):
                yield item if isinstance(item, FileOutcome) else ChunkDone([item], run_files(func, context, [item], verify, sent=False))
        else:
            workers = self.workers if total is None else min(self.workers, total)
            yield from _parallel(itertools.chain(head, items), func, context, workers, verify, total)

    def list_folders(self, folders: list[str], include_raw: bool) -> list[FolderListing]:
        return [list_folder(folder, include_raw) for folder in folders]

    def walk_lookahead(self) -> int:
        """Folders are listed here, one when the walk needs it."""
        return 1

    def map_tasks(self, function: Callable[[Any], Any], arguments: Iterable[Any], window: int | None = None) -> Iterator[Any]:
        """`function(argument)` for each argument, results in order (as `DaskExecutor.map_tasks`):
        in this process for one worker or one task, else on a pool kept for the executor's lifetime with a
        bounded window in flight. A worker that dies raises `BrokenProcessPool` (and the pool is
        replaced for the next call): the caller decides how to redo that work."""
        arguments = list(arguments)
        if self.workers <= 1 or len(arguments) <= 1:
            yield from map(function, arguments)  # a pool costs more than it gives one task
            return
        from concurrent.futures.process import BrokenProcessPool

        pool = self._task_pool()
        pending: deque = deque()
        window = window or self.workers * 2
        try:
            for argument in arguments:
                pending.append(pool.submit(function, argument))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            self._close_task_pool(wait=False)
            raise
        finally:
            for future in pending:
                future.cancel()

    def start(self) -> None:
        """Fork the workers of `map_tasks` now, without waiting for them: a process that is still
        small forks cheaply, and its workers do not carry copies of what it builds next."""
        if self.workers > 1:
            self._task_pool()

    def _task_pool(self) -> Any:
        if self._tasks is None:
            self._tasks = _process_pool(self.workers, (None, None, False, os.getpid()))
        return self._tasks

    def _close_task_pool(self, wait: bool) -> None:
        pool, self._tasks = self._tasks, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        self._close_task_pool(wait=True)


class ChunkWindow:
    """The client side of every executor: files sent in chunks (a chunk's size grows with the
    files seen, up to `max_chunk`), at most `window` chunks in flight, outcomes yielded in input
    order as their chunks finish. A `FileOutcome` among the items (a resumed file) takes its
    place in the window and passes through. Memory is bounded by the window, whatever the number
    of files."""

    def __init__(
        self,
        submit: Callable[[list[tuple[Any, Any]]], Any],
        workers: int,
        window: int,
        max_chunk: int,
        total: int | None,
        min_chunk: int = 1,
        chunks_per_worker: int = _CHUNKS_PER_WORKER,
    ) -> None:
        self.submit, self.workers, self.window, self.max_chunk, self.total = submit, workers, window, max_chunk, total
        self.min_chunk, self.chunks_per_worker = min_chunk, chunks_per_worker
        self.pending: deque = deque()  # (chunk, future) or a FileOutcome, in input order

    def run(self, items: Iterable[WorkItem], finish: Callable[[list[tuple[Any, Any]], Any], ChunkDone]) -> Iterator[FileOutcome | ChunkDone]:
        chunk: list[tuple[Any, Any]] = []
        seen = 0
        for item in items:
            if isinstance(item, FileOutcome):
                if chunk:
                    self._send(chunk)
                    chunk = []
                self.pending.append(item)
            else:
                chunk.append(item)
                seen += 1
                if len(chunk) >= self._size(seen):
                    self._send(chunk)
                    chunk = []
            while len(self.pending) >= self.window:
                yield from self._next(finish)
        if chunk:
            self._send(chunk)
        while self.pending:
            yield from self._next(finish)

    def futures(self) -> list[Any]:
        return [entry[1] for entry in self.pending if not isinstance(entry, FileOutcome)]

    def _size(self, seen: int) -> int:
        """Each worker gets `chunks_per_worker` chunks of the run (of the files seen so far, for
        a stream: the chunks grow as the walk goes on)."""
        return max(self.min_chunk, min(self.max_chunk, (self.total or seen) // (self.workers * self.chunks_per_worker)))

    def _send(self, chunk: list[tuple[Any, Any]]) -> None:
        self.pending.append((chunk, self.submit(chunk)))

    def _next(self, finish: Callable[[list[tuple[Any, Any]], Any], ChunkDone]) -> Iterator[FileOutcome | ChunkDone]:
        head = self.pending.popleft()
        yield head if isinstance(head, FileOutcome) else finish(*head)


class _Pool:
    """Worker processes for chunks (`forked.ForkedWorkers`) that die with this process; replaced
    when a worker crashes."""

    def __init__(self, workers: int, func: FileFunc, context: Any, verify: bool) -> None:
        self.args = (workers, func, context, verify)
        self.pool = self._start()

    def _start(self) -> Any:
        from .forked import ForkedWorkers

        workers, func, context, verify = self.args
        return ForkedWorkers(workers, _run_chunk, _init_worker, (func, context, verify, os.getpid()))

    def restart(self) -> None:
        self.pool.close(wait=False)
        self.pool = self._start()

    def submit(self, chunk: list[tuple[Any, Any]]) -> Any:
        """The chunk's future; when a worker died since the last chunk went out, the pool takes
        no more work: a future that says so (`WorkerDied`), handled where the dead worker's chunk is."""
        return self.pool.submit(chunk)

    def close(self, wait: bool) -> None:
        self.pool.close(wait)


def _process_pool(workers: int, initargs: tuple[Any, ...]) -> Any:
    """A process pool whose workers are forked now, with the garbage collector's view of this
    process frozen: a forked worker shares the parent's memory until it writes to it, and a
    collection in the worker would write to every object it visits (copying ~10 MB of pages,
    ~50 ms of CPU per worker on a busy parent). Unfrozen again once the workers exist."""
    import gc
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=initargs)
    gc.freeze()
    try:
        pool.submit(int)  # a process pool forks all its workers at the first task
    finally:
        gc.unfreeze()
    return pool


def runs_in_parent(func: FileFunc) -> FileFunc:
    """Mark a per-file function that cannot take its process down (pure Python: no native
    decoder, memory bounded by one file), so the local pool lets the parent run part of the files
    itself, with one worker fewer: one fork, one warm-up and half the hand-overs saved, while
    the parent would otherwise only wait."""
    func.runs_in_parent = True  # type: ignore[attr-defined]
    return func


class _InParent:
    """A chunk the parent runs itself: when its outcomes are due, or earlier, while it waits for
    a worker (`_Shares.work_while_waiting`). Future-like, as `ChunkWindow` expects. When the
    workers have nothing left to do as the parent starts it (the end of a batch: the parent holds
    the last chunks of the window), its second half goes to them (`_Shares.offload`), so the
    batch does not end with the parent alone on a whole chunk while a core waits."""

    def __init__(self, chunk: list[tuple[Any, Any]], func: FileFunc, context: Any, verify: bool, shares: _Shares | None = None) -> None:
        self.chunk, self.func, self.context, self.verify, self.shares = chunk, func, context, verify, shares
        self.ran = False
        self.results: list[FileResult] | None = None

    def done(self) -> bool:
        return self.ran

    def result(self) -> list[FileResult] | None:
        if not self.ran:
            self.results, self.ran = self._run(), True
        return self.results

    def _run(self) -> list[FileResult] | None:
        shares, half = self.shares, len(self.chunk) // 2
        helped = shares.offload(self.chunk[half:]) if shares is not None and half else None
        if shares is None or helped is None:
            return run_files(self.func, self.context, self.chunk, self.verify)
        mine, theirs = self.chunk[:half], self.chunk[half:]
        first = run_files(self.func, self.context, mine, self.verify)
        second = shares.collect(helped, theirs)
        if first is None and second is None:
            return None
        return (first or plain_results(mine)) + (second or plain_results(theirs))


class _Shares:
    """Who runs each chunk when the parent takes part: the workers get a chunk whenever fewer
    than `_QUEUED_PER_WORKER` of theirs are waiting (so none runs dry), the parent the others."""

    def __init__(self, pool: _Pool, func: FileFunc, context: Any, verify: bool, workers: int) -> None:
        self.pool, self.func, self.context, self.verify = pool, func, context, verify
        self.queued = workers * _QUEUED_PER_WORKER
        self.window: ChunkWindow | None = None
        self.offloaded: list[Any] = []  # pool futures of halves of the parent's chunks, not yet collected

    def submit(self, chunk: list[tuple[Any, Any]]) -> Any:
        if self._in_pool() < self.queued:
            return self.pool.submit(chunk)
        return _InParent(chunk, self.func, self.context, self.verify, self)

    def _in_pool(self) -> int:
        """The chunks the workers hold (sent, their results not back yet)."""
        assert self.window is not None
        held = sum(1 for entry in self.window.pending if not isinstance(entry, FileOutcome) and not isinstance(entry[1], _InParent) and not entry[1].done())
        return held + sum(1 for future in self.offloaded if not future.done())

    def offload(self, part: list[tuple[Any, Any]]) -> Any | None:
        """`part` sent to the workers when they hold no chunk at all (else None: they have work)."""
        if self._in_pool():
            return None
        future = self.pool.submit(part)
        self.offloaded.append(future)
        return future

    def collect(self, future: Any, part: list[tuple[Any, Any]]) -> list[FileResult] | None:
        """The results of an offloaded part; if its worker died, each of its files alone
        (`_isolate`), as `_parallel` does for a chunk (the pool is replaced at its next chunk)."""
        from .forked import WorkerDied

        try:
            return future.result()
        except WorkerDied:
            return _isolate(part, self.func, self.context)
        finally:
            self.offloaded.remove(future)

    def work_while_waiting(self, future: Any) -> None:
        """Before blocking on a worker's chunk, run the parent's next chunks, in order."""
        assert self.window is not None
        for entry in self.window.pending:
            if future.done():
                return
            if not isinstance(entry, FileOutcome) and isinstance(entry[1], _InParent) and not entry[1].done():
                entry[1].result()


_QUEUED_PER_WORKER = 2
# When the parent takes part, chunks half as large as otherwise (until `_MAX_CHUNK`): the last chunk
# a worker holds queued when the walk ends is what the parent may wait for at the end of a run (a
# 174-slice series: ~5 files, not ~10), and the parent's own chunks cost no hand-over.
_CHUNKS_PER_WORKER_WITH_PARENT = 16


def _parallel(items: Iterable[WorkItem], func: FileFunc, context: Any, workers: int, verify: bool, total: int | None) -> Iterator[FileOutcome | ChunkDone]:
    from .forked import WorkerDied

    in_parent = getattr(func, "runs_in_parent", False)
    pool = _Pool(workers - 1 if in_parent else workers, func, context, verify)
    shares = _Shares(pool, func, context, verify, workers - 1) if in_parent else None
    window = ChunkWindow(pool.submit if shares is None else shares.submit, workers, workers * _WINDOW_PER_WORKER, _MAX_CHUNK, total, _MIN_CHUNK, _CHUNKS_PER_WORKER_WITH_PARENT if in_parent else _CHUNKS_PER_WORKER)
    if shares is not None:
        shares.window = window

    def finish(chunk: list[tuple[Any, Any]], future: Any) -> ChunkDone:
        try:
            if shares is not None and not isinstance(future, _InParent):
                shares.work_while_waiting(future)
            return ChunkDone(chunk, future.result())
        except WorkerDied:
            # A worker died (a crash in native code, the OOM killer): find the file that did it
            # by running the chunk's files one by one, then go on with a fresh pool. Chunks in
            # flight are run again; what they already wrote is recognised (verify_existing).
            results = _isolate(chunk, func, context)
            pool.restart()
            for i, entry in enumerate(window.pending):
                if not isinstance(entry, FileOutcome) and not isinstance(entry[1], _InParent):
                    window.pending[i] = (entry[0], pool.submit(entry[0]))
            return ChunkDone(chunk, results)

    try:
        yield from window.run(items, finish)
    finally:
        pool.close(wait=not window.futures())


def _isolate(chunk: list[tuple[Any, Any]], func: FileFunc, context: Any) -> list[FileResult]:
    """Each file of a chunk whose worker died, alone in a one-worker pool: a file that kills its
    worker again becomes that file's error; the others complete."""
    from .forked import WorkerDied

    results: list[FileResult] = []
    for item in chunk:
        pool = _Pool(1, func, context, True)
        try:
            results += ChunkDone([item], pool.submit([item]).result()).file_results()
        except WorkerDied:
            results.append(died(item[0]))
        finally:
            pool.close(wait=True)
    return results


def died(source: Any) -> FileResult:
    """The result of a file whose worker died on it, every time it was tried."""
    return (None, FileError(str(source), ErrorCode.BACKEND_ERROR.value, _WORKER_DIED), False, False)


_WORKER_DIED = (
    "the worker process died while handling this file (a crash in a native decoder, or the system's "
    "out-of-memory killer); the rest of the batch went on"
)


def _out_of_memory(what: str = "ran out of memory") -> HubError:
    return HubError(
        ErrorCode.BACKEND_ERROR,
        f"batch aborted: {what}",
        "rerun with fewer parallel workers (options.workers) or on a machine with more memory; finished files are kept",
    )


# Worker-process state: the function and its context are sent once per worker, not per file.
_FUNC: FileFunc | None = None
_CONTEXT: Any = None
_VERIFY = False


def _init_worker(func: FileFunc | None, context: Any, verify: bool = False, parent_pid: int | None = None) -> None:
    global _FUNC, _CONTEXT, _VERIFY
    _FUNC, _CONTEXT, _VERIFY = func, context, verify
    # Ctrl-C is the parent's to handle; a worker interrupted mid-write could only leave temp files.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .lifetime import bind_to_parent
    from .state import close_inherited_locks

    bind_to_parent(parent_pid)
    close_inherited_locks()


def _run_chunk(chunk: list[tuple[Any, Any]]) -> list[FileResult] | None:
    """Results only: the parent knows the paths, and sending them back costs time."""
    assert _FUNC is not None
    return run_files(_FUNC, _CONTEXT, chunk, _VERIFY)


def run_files(func: FileFunc, context: Any, chunk: list[tuple[Any, Any]], verify: bool, sent: bool = True) -> list[FileResult] | None:
    """The worker side of every executor: each file's `FileResult`, or None when every file
    succeeded plainly (see `ChunkDone`). `sent`: the results go to another process, so a value
    that does not pickle is that file's error."""
    results: list[FileResult] = []
    plain = True
    for source, target in chunk:
        outcome = _attempt(func, context, Path(source), None if target is None else Path(target), verify)
        value, error = outcome.value, outcome.error
        if value is not None and sent and not _picklable(value):
            value, error = None, FileError(str(source), ErrorCode.INTERNAL_ERROR.value, f"result of type {type(value).__name__} cannot be sent back")
        written = error is None and target is not None and os.path.exists(target)
        plain = plain and value is None and error is None and not outcome.reused and (written or target is None)
        results.append((value, error, outcome.reused, written))
    return None if plain else results


def _picklable(value: Any) -> bool:
    import pickle

    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _attempt(func: FileFunc, context: Any, source: Path, target: Path | None, verify: bool = False) -> FileOutcome:
    """Run one file; turn any failure but running out of memory into a `FileError`.

    Failures of every kind are caught, `BaseException`s included (a Rust panic surfaces as
    pyo3's `PanicException`), so one crafted file cannot stop a batch; only `KeyboardInterrupt`
    and `SystemExit` go through. With `verify`, an existing target is checked instead of
    refused: the file is written beside it and compared; identical bytes mean this file was
    already done by an interrupted run of the same request (counted, marked `reused`).
    """
    try:
        if verify and target is not None and os.path.lexists(target):
            return _verify_existing(func, context, source, target)
        return FileOutcome(source, target, func(source, target, context))
    except MemoryError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except HubError as err:
        error = FileError(str(source), err.code.value, err.message)
    except OSError as err:
        code = ErrorCode.OUTPUT_ERROR if _about_output(err, target) else ErrorCode.INPUT_NOT_FOUND
        error = FileError(str(source), code.value, f"{type(err).__name__}: {err}")
    except BaseException as err:  # noqa: BLE001 - see the docstring
        error = FileError(str(source), ErrorCode.INTERNAL_ERROR.value, f"{type(err).__name__}: {err}")
    return FileOutcome(source, target, None, error)


def _verify_existing(func: FileFunc, context: Any, source: Path, target: Path) -> FileOutcome:
    import filecmp
    import secrets

    scratch = target.with_name(f".{target.name}.{secrets.token_hex(4)}.verify{target.suffix}")
    try:
        value = func(source, scratch, context)
        same = target.is_file() and not target.is_symlink() and filecmp.cmp(scratch, target, shallow=False)
    finally:
        scratch.unlink(missing_ok=True)
    if not same:
        raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists and differs from what this request writes: {target}", "choose another folder or set options.overwrite to true")
    return FileOutcome(source, target, value, reused=True)


def _about_output(err: OSError, target: Path | None) -> bool:
    """Did writing fail (the target, its temp file beside it, or a folder on its way)?"""
    if target is None or err.filename is None:
        return False
    failed = Path(err.filename)
    return failed == target or failed.parent == target.parent or failed in target.parents


def _make_folder(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot create the output folder {path}: {err.strerror}", "check the path and its permissions") from None


class _NoBar:
    total = 0

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, enabled: bool, describe: str) -> Any:
    """A bar on stderr; `total` None: it grows as a stream finds files."""
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total or 0, desc=describe, unit="file", file=sys.stderr, dynamic_ncols=True)
