"""`extract_metadata`: one table row per DICOM file of a tree, written as CSV or Parquet.

How it stays fast, bounded and resumable:
1. the workers are forked first, while this process is small; discovery then freezes the file
   list into the run state (`state.RunState`, next to the output), cut into chunks of at most
   `chunk_files` files (fewer when the run is small, so that every worker gets several);
2. each chunk is one worker task (`LocalExecutor.map_tasks`): the worker reads its files (headers
   only, `flatten.read_row`: pydicom is not even imported for plain little-endian files) and
   saves the chunk's rows itself, so rows never travel between processes and a worker holds one
   chunk of rows, as text; a chunk whose worker died is redone here file by file;
3. when every chunk is saved, the chunk headers give the columns that are non-empty somewhere,
   and the CSV parts are joined in order through `atomic_output` (Parquet is written here); then
   the state is removed. The columns are known only then, so the task that saves a chunk also
   formats its CSV part with the columns it expects (`CsvParts`: its own non-empty ones and those
   of the chunks saved before it): a part whose columns are the table's is copied as it is, any
   other chunk is formatted again by a worker task. In an archive of alike files every part is
   copied; in a mixed one the parts formatted in vain are bounded (`CsvParts`).
An interrupted run restarted with the same arguments skips the chunks already saved (and removes
the temp file of a table write it interrupted).

CSV cells are made safe for spreadsheets (OWASP "CSV injection"): a value starting with `=`, `+`,
`-`, `@`, a tab or a carriage return, that is not a plain number, is written with a leading `'`,
so `=HYPERLINK(...)` in a header is shown, not run. `options.escape_formulas: false` writes the
raw values. Parquet values are never changed.

With `options.executor = "dask"` the work runs on a Dask cluster instead (`extract_dask`).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .discovery import scan
from .flatten import PATH_COLUMN, read_row, sort_key
from .runner import _attempt, _progress_bar, iter_results, show_progress, workers_option
from .state import ChunkRows, RunState, remove_own_temporaries


@dataclass(frozen=True)
class RowOptions:
    """What shapes a row (sent to the workers once)."""

    max_binary: int = 256
    include_file_meta: bool = True


def extract_one(source: Path, _target: Path | None, options: RowOptions) -> dict[str, str]:
    return read_row(source, options.max_binary, options.include_file_meta)


def run_settings(job: Job, **extra: Any) -> tuple[RowOptions, dict[str, Any]]:
    """How rows are read, and the run's signature: what a resumed run must share with the run it
    resumes (any difference starts afresh). `extra` adds executor-specific entries."""
    options = RowOptions(int(job.option("max_binary_length")), bool(job.option("include_file_meta", True)))
    signature = {
        **extra,
        "inputs": [str(p) for p in job.inputs],
        "recursive": bool(job.option("recursive", True)),
        "include_raw": bool(job.option("include_raw")),
        "max_binary": options.max_binary,
        "include_file_meta": options.include_file_meta,
        "chunk_files": int(job.option("chunk_files")),
    }
    return options, signature


def extract_metadata(job: Job) -> Outcome:
    from .executors import executor_for, executor_name

    start = time.perf_counter()
    assert job.output is not None
    if executor_name(job) == "dask":
        from .extract_dask import extract_metadata_dask

        return extract_metadata_dask(job)
    table_format = job.option("format") or ("parquet" if job.output.suffix.lower() in (".parquet", ".pq") else "csv")
    if table_format == "parquet":
        _require_pyarrow()
    options, signature = run_settings(job)
    with RunState(job.output) as state, executor_for(job) as executor:
        executor.start()  # before the file list is built, so that the workers do not hold copies of it
        run = state.load(signature) if job.option("resume") else None
        resumed = run is not None
        if run is None:
            run = _start_run(state, signature, job)
        files: list[str] = run["files"]
        size = run.get("chunk_size") or signature["chunk_files"]
        chunks = [files[i : i + size] for i in range(0, len(files), size)]
        todo = [k for k in range(len(chunks)) if not state.has_chunk(k)]
        parts = CsvParts(state, bool(job.option("escape_formulas")) if table_format == "csv" else None)
        _extract_chunks(state, chunks, todo, options, executor, show_progress(job), parts)
        summary = _write_table(state, len(chunks), job.output, table_format, job.overwrite, bool(job.option("escape_formulas")), executor, parts.run)
        state.remove()
    summary.update(
        files=len(files),
        files_processed=summary["rows"],
        files_skipped=run["skipped"],
        files_failed=len(summary["errors"]),
        format=table_format,
        resumed=resumed,
        chunks_reused=len(chunks) - len(todo),
        duration_s=round(time.perf_counter() - start, 3),
    )
    return Outcome(metadata=summary, output_files=[str(job.output)])


def _start_run(state: RunState, signature: dict[str, Any], job: Job) -> dict[str, Any]:
    """Find the files and freeze their list (as strings: the found paths are dropped on return)."""
    found = scan(job.inputs, recursive=bool(signature["recursive"]), include_raw=bool(signature["include_raw"]))
    size = chunk_size(len(found.files), signature["chunk_files"], workers_option(job))
    return state.start(signature, [str(p) for p in found.files], len(found.skipped), chunk_size=size)


# Chunks per worker at least, when the files are few: enough for every core to stay busy to the end.
CHUNKS_PER_WORKER = 8


def chunk_size(files: int, chunk_files: int, workers: int) -> int:
    """Files per saved chunk: `chunk_files` at most, fewer when the run has too few files to give
    every worker several chunks (a chunk is one worker's task)."""
    return max(1, min(chunk_files, -(-files // (workers * CHUNKS_PER_WORKER))))


def _extract_chunks(state: RunState, chunks: list[list[str]], todo: list[int], options: RowOptions, executor: Any, progress: bool, parts: CsvParts) -> None:
    """Read the files of the missing chunks, one chunk per task: the worker saves the chunk's rows
    itself, so rows never travel between processes. A chunk whose worker died (a crash in native
    code, the OOM killer) is redone here file by file, where such a file costs only itself."""
    from concurrent.futures.process import BrokenProcessPool

    bar = _progress_bar(sum(len(chunks[k]) for k in todo), progress, "extract_metadata")
    remaining = list(todo)
    try:
        tasks = ((str(state.folder), k, chunks[k], options) for k in todo)
        for header in executor.map_tasks(extract_chunk, tasks):
            remaining.remove(header["index"])
            parts.note(header)
            bar.update(header["rows"] + len(header["errors"]))
    except BrokenProcessPool:
        for k in remaining:
            if not state.has_chunk(k):
                _extract_isolated(state, k, chunks[k], options, executor)
            bar.update(len(chunks[k]))
    finally:
        bar.close()


def extract_chunk(argument: tuple[str, int, list[str], RowOptions]) -> dict[str, Any]:
    """A worker's task: read one chunk's files and save its rows in the run state, with its CSV
    part when the run asks for one (`CsvParts`); return what the progress and `CsvParts` need
    (the chunk's index, rows, errors, non-empty columns, and the `columns_digest` of its part's)."""
    folder, index, files, options = argument
    rows = ChunkRows()  # each row kept as its saved text: a worker's memory stays small
    errors: list[dict[str, str]] = []
    for path in files:
        outcome = _attempt(extract_one, options, Path(path), None)
        if outcome.error is not None:
            errors.append(outcome.error.as_dict())
        else:
            rows.add(outcome.value)
    state = RunState.at(Path(folder))
    part = preformat_part(state, index, rows)
    state.save_chunk(index, rows, errors, **({"csv": part} if part else {}))
    return {"index": index, "rows": len(rows.lines), "errors": errors, "used": rows.used(), "csv": part and part["columns_digest"]}


def preformat_part(state: RunState, index: int, rows: ChunkRows) -> dict[str, Any] | None:
    """Chunk `index`'s rows as a CSV part, formatted with the columns `state.csv_hint()` names
    and the chunk's own non-empty ones; None when the run asks for no part (Parquet, or
    `CsvParts` gave up). The part's description, for the chunk header."""
    hint = state.csv_hint()
    if hint is None:
        return None
    columns = sorted({PATH_COLUMN, *rows.used(), *(hint["columns"] or ())}, key=sort_key)
    escape_formulas = bool(hint["escape_formulas"])
    name = state.save_part(index, lambda f: _write_rows(f, _in_order(rows.values(), list(rows.columns), columns), escape_formulas))
    size = os.path.getsize(state.folder / name)
    return {"part": name, "columns_digest": columns_digest(columns), "escape_formulas": escape_formulas, "run": hint["run"], "bytes": size}


class CsvParts:
    """What the tasks pre-format their chunk's CSV part with (`preformat_part`), kept in the run
    state's `csv-hint.json`, which each task reads when its chunk is done: the union of the
    non-empty columns of the chunks done so far (none at first: each part then has its chunk's
    own), and the escaping. A part is of use only if its columns end up the table's: in an
    archive of alike files all are; in a mixed one the union grows and the parts formatted before
    are formatted again at the end. Those are bounded: once more than a quarter of the parts
    formatted so far (and at least `SPARE_PARTS`) are stale, the tasks stop formatting parts and
    the table is formatted at the end, as without parts, so a mixed archive costs at most about
    a quarter of its formatting more (plus the tasks already running)."""

    SPARE_PARTS = 8

    def __init__(self, state: RunState, escape_formulas: bool | None) -> None:
        """`escape_formulas` None: no CSV table, no parts."""
        import secrets

        self.state, self.escape_formulas = state, escape_formulas
        self.run = secrets.token_hex(8)  # the parts this run may use (not those of a run it resumes)
        self.union: set[str] = {PATH_COLUMN}
        self.digest = columns_digest([PATH_COLUMN])  # of the union, in table order
        self.formatted: dict[str, int] = {}  # parts formatted, by their columns' digest
        self.count = 0  # parts formatted
        self.active = escape_formulas is not None
        state.save_csv_hint(self.hint(None) if self.active else None)

    def note(self, header: dict[str, Any]) -> None:
        """One chunk done (`extract_chunk`'s return value)."""
        if not self.active:
            return
        grew = not self.union.issuperset(header["used"])
        if grew:
            self.union.update(header["used"])
            columns = sorted(self.union, key=sort_key)
            self.digest = columns_digest(columns)
        if header["csv"] is not None:
            self.formatted[header["csv"]] = self.formatted.get(header["csv"], 0) + 1
            self.count += 1
        stale = self.count - self.formatted.get(self.digest, 0)
        if stale > max(self.SPARE_PARTS, self.count // 4):
            self.active = False
            self.state.save_csv_hint(None)
        elif grew:
            self.state.save_csv_hint(self.hint(columns))

    def hint(self, columns: list[str] | None) -> dict[str, Any]:
        return {"columns": columns, "escape_formulas": self.escape_formulas, "run": self.run}


def columns_digest(columns: list[str]) -> str:
    """A short digest of a column list, in order: what a part's header entry and its task's
    answer say of its columns (a mixed archive has thousands; they are only compared)."""
    import hashlib

    return hashlib.blake2b("\0".join(columns).encode(), digest_size=12).hexdigest()


def _extract_isolated(state: RunState, index: int, files: list[str], options: RowOptions, executor: Any) -> None:
    """One chunk through the per-file runner, which gives a file that kills its worker that
    file's `backend_error` and goes on with the rest."""
    rows: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    for outcome in iter_results([(Path(p), None) for p in files], extract_one, options, executor=executor):
        if outcome.error is not None:
            errors.append(outcome.error.as_dict())
        else:
            rows.append(outcome.value)
    state.save_chunk(index, rows, errors)


def _write_table(state: RunState, chunk_count: int, output: Path, table_format: str, overwrite: bool, escape_formulas: bool, executor: Any, run: str) -> dict[str, Any]:
    """Pass 1 reads the chunk headers for the non-empty columns; pass 2 streams the rows out."""
    columns, rows, errors, warnings, parts = table_columns(state, range(chunk_count))
    remove_own_temporaries(output.parent, [output.name])  # a table write a kill interrupted
    with atomic_output(output, overwrite) as tmp:
        if table_format == "parquet":
            _write_parquet(tmp, columns, _row_lists(state, range(chunk_count), columns))
        else:
            write_csv_table(tmp, state, chunk_count, columns, escape_formulas, executor, parts, run)
    return {"rows": rows, "columns": len(columns), "errors": errors, "warnings": warnings, "files_incomplete": len(warnings)}


class TableSummary(NamedTuple):
    """What the chunk headers say about the whole table."""

    columns: list[str]  # non-empty in some row, in `sort_key` order
    rows: int
    errors: list[dict[str, str]]  # files without a row
    warnings: list[dict[str, str]]  # files whose row is partial (header cut short)
    parts: dict[int, dict[str, Any]]  # the chunks' pre-formatted CSV parts (`preformat_part`), by index


def table_columns(state: RunState, chunks: Any) -> TableSummary:
    """The table's columns, row count, errors, warnings and CSV parts, from the chunk headers alone."""
    used: set[str] = {PATH_COLUMN}
    errors: list[dict[str, str]] = []
    warnings: list[dict[str, str]] = []
    parts: dict[int, dict[str, Any]] = {}
    rows = 0
    for k in chunks:
        header = state.chunk_header(k)
        errors.extend(header["errors"])
        warnings.extend(header.get("warnings", []))
        rows += header["rows"]
        used.update(header["used"])
        if "csv" in header:
            parts[k] = header["csv"]
    return TableSummary(sorted(used, key=sort_key), rows, errors, warnings, parts)


def _row_lists(state: RunState, chunks: Iterable[int], columns: list[str]) -> Iterator[list[str | None]]:
    """Every saved row of `chunks` as a list in the table's column order (None where a file
    has no value)."""
    for k in chunks:
        yield from _in_order(state.chunk_rows(k), state.chunk_header(k)["columns"], columns)


def _in_order(rows: Iterable[list[str | None]], names: list[str], columns: list[str]) -> Iterator[list[str | None]]:
    """Rows with values in the order of `names` (their chunk's columns), in `columns`' order."""
    where = {name: i for i, name in enumerate(names)}
    positions = [where.get(name, len(names)) for name in columns]  # len(names): the None added below
    for values in rows:
        values.append(None)
        yield [values[i] for i in positions]


def write_csv_table(
    path: Path, state: RunState, chunk_count: int, columns: list[str], escape_formulas: bool, executor: Any,
    parts: dict[int, dict[str, Any]] | None = None, run: str | None = None,
) -> None:  # fmt: skip
    """The table as CSV: the header here, then each chunk's part joined here in order: the part
    its extraction task formatted in this run (`parts`, from `table_columns`; `run`:
    `CsvParts.run`) when that has the table's columns and escaping, else one formatted now by a
    task (`csv_part`), so the formatting runs on every core. Should a worker die, the whole table
    is written here instead."""
    from concurrent.futures.process import BrokenProcessPool

    _write_csv(path, columns, iter(()))
    digest = columns_digest(columns)
    ready = {k: part for k, entry in (parts or {}).items() if (part := fitting_part(state, entry, digest, escape_formulas, run)) is not None}
    tasks = ((str(state.folder), k, columns, escape_formulas) for k in range(chunk_count) if k not in ready)
    try:
        formatted = executor.map_tasks(csv_part, tasks)
        with open(path, "r+b", buffering=0) as table:
            table.seek(0, os.SEEK_END)
            for k in range(chunk_count):
                part = ready[k] if k in ready else Path(next(formatted))
                _append(table, part)
                os.unlink(part)
    except BrokenProcessPool:
        _write_csv(path, columns, _row_lists(state, range(chunk_count), columns), escape_formulas)


def fitting_part(state: RunState, part: dict[str, Any], digest: str, escape_formulas: bool, run: str | None) -> Path | None:
    """The pre-formatted part a chunk header describes (`part`), if this run made it with the
    columns of `digest` (`columns_digest`) and this escaping, and it is whole."""
    if run is None or part["run"] != run or part["columns_digest"] != digest or part["escape_formulas"] != escape_formulas:
        return None
    path = state.folder / part["part"]
    try:
        return path if os.path.getsize(path) == part["bytes"] else None
    except OSError:
        return None


def _append(table: Any, part: Path) -> None:
    """Add the bytes of `part` at `table`'s position (an unbuffered file), in the kernel when it can."""
    with open(part, "rb", buffering=0) as source:
        left = os.fstat(source.fileno()).st_size
        try:
            while left > 0:
                copied = os.copy_file_range(source.fileno(), table.fileno(), left)
                if copied == 0:
                    break
                left -= copied
        except OSError:  # not on this file system: copy through memory from where it stopped
            shutil.copyfileobj(source, table, 1 << 20)


def csv_part(argument: tuple[str, int, list[str], bool]) -> str:
    """A worker's task: one chunk's rows as CSV lines (no header) in a part file of the run
    state; return its path."""
    folder, index, columns, escape_formulas = argument
    state = RunState.at(Path(folder))
    part = state.folder / f"part-{index:06d}.csv"
    with open(part, "w", newline="", encoding="utf-8") as f:
        _write_rows(f, _row_lists(state, [index], columns), escape_formulas)
    return str(part)


def _write_csv(path: Path, columns: list[str], rows: Iterator[list[str | None]], escape_formulas: bool = True) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(columns)
        _write_rows(f, rows, escape_formulas)


def _write_rows(f: Any, rows: Iterator[list[str | None]], escape_formulas: bool) -> None:
    import csv

    if escape_formulas:
        rows = (_safe_row(row) for row in rows)
    csv.writer(f).writerows(rows)  # None is written as an empty field


_FORMULA_START = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def spreadsheet_safe(value: str | None) -> str | None:
    """`'=cmd|...` for `=cmd|...`: a spreadsheet shows a cell starting with a quote as text.
    Plain numbers (`-12.5`, `+3`) cannot run anything and are kept as they are."""
    if value and value[0] in _FORMULA_START and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _safe_row(row: list[str | None]) -> list[str | None]:
    """`spreadsheet_safe` of every value, without a call per value (the table's inner loop)."""
    start, plain = _FORMULA_START, _PLAIN_NUMBER.match
    return ["'" + value if value and value[0] in start and not plain(value) else value for value in row]


def _write_parquet(path: Path, columns: list[str], rows: Iterator[list[str | None]], batch_rows: int = 2000) -> None:
    """All columns as strings (null where a file lacks the element), in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.string()) for name in columns])
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[list[str | None]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                writer.write_table(_table(pa, schema, columns, batch))
                batch = []
        if batch:
            writer.write_table(_table(pa, schema, columns, batch))


def _table(pa: Any, schema: Any, columns: list[str], batch: list[list[str | None]]) -> Any:
    return pa.Table.from_arrays([pa.array([row[i] for row in batch], pa.string()) for i in range(len(columns))], schema=schema)


def _require_pyarrow() -> None:
    from importlib.util import find_spec

    if find_spec("pyarrow") is None:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "Parquet output needs pyarrow, which is not installed", "pip install 'dicom-hub[parquet]', or write CSV")
