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
        return run_batch(job, anonymize_one, context=MyContext(...), default_suffix="_anonymized")

`run_batch(job, func, *, context=None, default_suffix="", extension=None, writes_output=True,
describe="...")` does everything around the function:
- finds the files (`job.inputs`: folders and/or files; options `recursive` (default true) and
  `include_raw`) with `discovery.scan`;
- maps each input file to its output path (`plan_targets`): `<output>/<relative folder if
  options.preserve_tree (default true)>/<stem><options.suffix or default_suffix><extension or the
  file's own DICOM extension>`; two inputs that would land on the same path get `_2`, `_3`, ...;
  `writes_output=False` (ops without output) passes `target=None`;
- runs `func(source, target, context)` for each file in `options.workers` processes (default: all
  cores; 1 runs in-process), in bounded windows so memory does not grow with the file count;
- catches every per-file exception: `HubError` keeps its code, `OSError` becomes
  `input_not_found` / `output_error`, anything else `internal_error`; the batch goes on;
- aborts on `MemoryError` (or a worker killed by the OOM killer) with a `backend_error` that says
  to lower `options.workers`;
- shows a tqdm bar on stderr only when stderr is a terminal and `options.progress` is not false;
- returns an `Outcome`: `output_files` (targets that exist after success) and metadata
  `files_processed`, `files_skipped` (looked at, not DICOM), `files_failed`, `errors` (each
  `{path, code, message}`) and `results` (`{path, **value}` for each non-None return value).

"Nothing is written for a failed file" is the per-file function's half of the contract: write
through `contract.files.atomic_output` / `_dataset.write_dataset`, never to `target` directly.

Lower-level pieces, for ops that stream results themselves (e.g. `extract_metadata`):
`iter_results(items, func, context, workers, progress, describe)` yields a `FileOutcome` per
`(source, target)` pair, in input order, as soon as it is ready.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

from .discovery import DICOM_EXTENSIONS, scan

FileFunc = Callable[[Path, "Path | None", Any], Any]

# Chunks in flight per worker: enough to keep every core busy, few enough to bound memory.
_WINDOW_PER_WORKER = 3
_MAX_CHUNK = 32


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
    """What happened to one file: the function's return value, or the error."""

    source: Path
    target: Path | None
    value: Any = None
    error: FileError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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
    return job.option("progress", True) is not False and sys.stderr.isatty()


def run_batch(
    job: Job,
    func: FileFunc,
    *,
    context: Any = None,
    default_suffix: str = "",
    extension: str | None = None,
    writes_output: bool = True,
    describe: str | None = None,
) -> Outcome:
    """Discover, plan, run `func` on every file, and summarise (see the module docstring)."""
    found = scan(job.inputs, recursive=bool(job.option("recursive", True)), include_raw=bool(job.option("include_raw", False)))
    if writes_output:
        if job.output is None:
            raise HubError(ErrorCode.INVALID_REQUEST, f"op {job.op!r} needs an output folder", "set 'output' to a folder")
        suffix = job.option("suffix", default_suffix)
        targets: Sequence[Path | None] = plan_targets(
            found.files, job.inputs, job.output, suffix=suffix, extension=extension, preserve_tree=bool(job.option("preserve_tree", True))
        )
        _make_folder(job.output)
    else:
        targets = [None] * len(found.files)
    outcomes = iter_results(zip(found.files, targets, strict=True), func, context, workers_option(job), show_progress(job), describe or job.op)
    return summarize(outcomes, skipped=len(found.skipped))


def summarize(outcomes: Iterable[FileOutcome], skipped: int = 0) -> Outcome:
    """Fold per-file outcomes into the batch response shape."""
    output_files: list[str] = []
    errors: list[dict[str, str]] = []
    results: list[dict[str, Any]] = []
    processed = 0
    for item in outcomes:
        if item.error is not None:
            errors.append(item.error.as_dict())
            continue
        processed += 1
        if item.target is not None and item.target.exists():
            output_files.append(str(item.target))
        if item.value is not None:
            results.append({"path": str(item.source), **(item.value if isinstance(item.value, dict) else {"value": item.value})})
    metadata: dict[str, Any] = {
        "files_processed": processed,
        "files_skipped": skipped,
        "files_failed": len(errors),
        "errors": errors,
    }
    if results:
        metadata["results"] = results
    return Outcome(metadata=metadata, output_files=output_files)


def plan_targets(
    files: Sequence[Path],
    roots: Sequence[Path],
    output: Path,
    *,
    suffix: str = "",
    extension: str | None = None,
    preserve_tree: bool = True,
) -> list[Path]:
    """One output path per input file, all distinct, all inside `output`.

    The relative folder comes from the input folder the file was found in (a file given by name
    has none). A DICOM extension is kept (`a.IMA` -> `a_suffix.IMA`); other names are kept whole
    (UID-named files such as `1.2.3.45` -> `1.2.3.45_suffix`), then `extension` replaces the
    extension when given (`.png`).
    """
    taken: set[str] = set()
    targets = []
    for file in files:
        root = next((r for r in roots if r in file.parents), file.parent)
        relative = file.parent.relative_to(root) if preserve_tree else Path()
        own_ext = file.suffix if file.suffix.lower() in DICOM_EXTENSIONS else ""
        stem = file.name[: len(file.name) - len(own_ext)] if own_ext else file.name
        ext = own_ext if extension is None else extension
        candidate = output / relative / f"{stem}{suffix}{ext}"
        n = 2
        while str(candidate) in taken:
            candidate = output / relative / f"{stem}{suffix}_{n}{ext}"
            n += 1
        taken.add(str(candidate))
        targets.append(candidate)
    return targets


def iter_results(
    items: Iterable[tuple[Path, Path | None]],
    func: FileFunc,
    context: Any = None,
    workers: int = 1,
    progress: bool = False,
    describe: str = "",
) -> Iterator[FileOutcome]:
    """`func(source, target, context)` for each pair, in order; parallel when `workers` > 1."""
    items = list(items)
    bar = _progress_bar(len(items), progress, describe)
    try:
        # The bar moves before each yield: a consumer may stop asking after the last file.
        if workers <= 1 or len(items) <= 1:
            for source, target in items:
                outcome = _attempt(func, context, source, target)
                bar.update(1)
                yield outcome
        else:
            for outcome in _parallel(items, func, context, min(workers, len(items))):
                bar.update(1)
                yield outcome
    except MemoryError:
        raise _out_of_memory() from None
    finally:
        bar.close()


def _parallel(items: list[tuple[Path, Path | None]], func: FileFunc, context: Any, workers: int) -> Iterator[FileOutcome]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = max(1, min(_MAX_CHUNK, len(items) // (workers * 8)))
    chunks = (items[i : i + size] for i in range(0, len(items), size))
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(func, context))
    pending: deque = deque()

    def finished() -> Iterator[FileOutcome]:
        chunk, future = pending.popleft()
        for (source, target), (value, error) in zip(chunk, future.result(), strict=True):
            yield FileOutcome(source, target, value, error)

    try:
        for chunk in chunks:
            pending.append((chunk, pool.submit(_run_chunk, chunk)))
            if len(pending) >= workers * _WINDOW_PER_WORKER:
                yield from finished()
        while pending:
            yield from finished()
    except BrokenProcessPool:
        raise _out_of_memory("a worker process died (often the system's out-of-memory killer)") from None
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)


def _out_of_memory(what: str = "ran out of memory") -> HubError:
    return HubError(
        ErrorCode.BACKEND_ERROR,
        f"batch aborted: {what}",
        "rerun with fewer parallel workers (options.workers) or on a machine with more memory; finished files are kept",
    )


# Worker-process state: the function and its context are sent once per worker, not per file.
_FUNC: FileFunc | None = None
_CONTEXT: Any = None


def _init_worker(func: FileFunc, context: Any) -> None:
    global _FUNC, _CONTEXT
    _FUNC, _CONTEXT = func, context
    # Ctrl-C is the parent's to handle; a worker interrupted mid-write could only leave temp files.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_chunk(chunk: list[tuple[Path, Path | None]]) -> list[tuple[Any, FileError | None]]:
    """Values and errors only: the parent knows the paths, and sending them back costs time."""
    assert _FUNC is not None
    results = []
    for source, target in chunk:
        outcome = _attempt(_FUNC, _CONTEXT, source, target)
        results.append((outcome.value, outcome.error))
    return results


def _attempt(func: FileFunc, context: Any, source: Path, target: Path | None) -> FileOutcome:
    """Run one file; turn any failure but running out of memory into a `FileError`."""
    try:
        return FileOutcome(source, target, func(source, target, context))
    except MemoryError:
        raise
    except HubError as err:
        error = FileError(str(source), err.code.value, err.message)
    except OSError as err:
        code = ErrorCode.OUTPUT_ERROR if _about_output(err, target) else ErrorCode.INPUT_NOT_FOUND
        error = FileError(str(source), code.value, f"{type(err).__name__}: {err}")
    except Exception as err:
        error = FileError(str(source), ErrorCode.INTERNAL_ERROR.value, f"{type(err).__name__}: {err}")
    return FileOutcome(source, target, None, error)


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
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool, describe: str) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=describe, unit="file", file=sys.stderr, dynamic_ncols=True)
