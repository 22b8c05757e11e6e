"""`extract_metadata` with `options.executor = "dask"`: the same rows, computed as tasks.

1. Discovery runs as one listing task per folder (`discovery.walk_tree`), streamed into
   partitions of `chunk_files` files, each saved in the run state (`files-NNNNNN.json`) as soon
   as it is full and extracted at once, while the walk goes on: the client never holds the
   archive's file list. A run too small to give every worker several partitions is cut finer
   once its walk is done (`extract.chunk_size`, as the local run), so that no worker waits for
   another's last partition.
2. One task per partition reads its files and saves the partition's rows as a state chunk on
   the shared file system (`extract.extract_chunk`, the local run's task); the client receives
   only the chunk's header (row count, errors).
3. The table: CSV parts, formatted by the partitions' tasks (`extract.CsvParts`) or, when their
   columns are not the table's, by tasks at the end, are joined in order by the client
   (`extract.write_csv_table`, as the local run); Parquet becomes a dataset folder at the output
   path, one `part-NNNNNN.parquet` per partition written by a task, every part with the same
   schema (all the table's columns, as strings), so pyarrow, pandas, polars and DuckDB read the
   folder as one table. The folder is built under a temp name and renamed into place.
An interrupted run resumes at partition granularity: discovery once complete, and every saved
chunk, are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .discovery import FolderListing, walk_tree
from .extract import (
    CHUNKS_PER_WORKER,
    CsvParts,
    RowOptions,
    _row_lists,
    chunk_size,
    extract_chunk,
    run_settings,
    table_columns,
    write_csv_table,
)
from .runner import _progress_bar, executor_metadata, show_progress
from .state import RunState, remove_own_temporaries

PART_NAME = "part-{:06d}.parquet"


def extract_metadata_dask(job: Job) -> Outcome:
    from .executors import executor_for

    start = time.perf_counter()
    assert job.output is not None
    output = job.output
    table_format = job.option("format") or ("parquet" if output.suffix.lower() in (".parquet", ".pq") else "csv")
    if table_format == "parquet":
        from .extract import _require_pyarrow

        _require_pyarrow()
    options, signature = run_settings(job, executor="dask")
    size = signature["chunk_files"]
    progress = show_progress(job)
    with RunState(output) as state, executor_for(job) as executor:
        run = state.load(signature) if job.option("resume") else None
        resumed = run is not None
        reused = 0
        if run is None or not run.get("discovered"):
            # Partitions are extracted as the walk saves them: the workers start on the first
            # while the rest of the tree is still being listed.
            discovery = Discovery(state, signature, executor, job.inputs, size, executor.worker_count())
            todo: Iterable[int] = discovery.partitions()
            bar = _progress_bar(None, progress, "extract_metadata")
        else:
            discovery = None
            missing = [k for k in range(run["partitions"]) if not state.has_chunk(k)]
            reused, todo = run["partitions"] - len(missing), missing
            bar = _progress_bar(run["files"], progress, "extract_metadata")
            bar.update(run["files"] - sum(len(_partition_files(state, k)) for k in missing))
        parts = CsvParts(state, bool(job.option("escape_formulas")) if table_format == "csv" else None)
        try:
            for header in executor.map_tasks(extract_partition, ((str(state.folder), k, options) for k in todo)):
                parts.note(header)
                bar.update(header["rows"] + len(header["errors"]))
        finally:
            bar.close()
        run = discovery.run if discovery is not None else run
        assert run is not None
        count = run["partitions"]
        columns, rows, errors, warnings, parts_made = table_columns(state, range(count))
        if table_format == "parquet":
            _publish_dataset(state, executor, count, columns, output, job.overwrite)
        else:
            remove_own_temporaries(output.parent, [output.name])
            with atomic_output(output, job.overwrite) as tmp:
                write_csv_table(tmp, state, count, columns, bool(job.option("escape_formulas")), executor, parts_made, parts.run)
        metadata: dict[str, Any] = {
            "rows": rows,
            "columns": len(columns),
            "errors": errors,
            "warnings": warnings,
            "files_incomplete": len(warnings),
            "files": run["files"],
            "files_processed": rows,
            "files_skipped": run["skipped"],
            "files_failed": len(errors),
            "format": table_format,
            "partitions": count if table_format == "parquet" else None,
            "resumed": resumed,
            "chunks_reused": reused,
            **executor_metadata(executor),
        }
        state.remove()
    metadata = {k: v for k, v in metadata.items() if v is not None}
    metadata["duration_s"] = round(time.perf_counter() - start, 3)
    return Outcome(metadata=metadata, output_files=[str(output)])


# -- discovery, streamed into partitions ------------------------------------------------------------


# Files held before the first partition is saved, at most: a run smaller than this is cut once
# it is all found (bounded, so the client's memory stays flat in the number of files).
_SMALL_RUN_CAP = 50_000


class Discovery:
    """The walk cut into partitions of `size` files, each saved in the run state as soon as it is
    full and yielded (`partitions`), so extraction starts while the walk goes on. Until
    `size` x workers x 8 files are found the run may be small: those are held, then cut finer
    once the walk ends (`extract.chunk_size`, as the local run), so no worker waits for another's
    last partition. `run` is the saved run description, once every partition is out."""

    def __init__(self, state: RunState, signature: dict[str, Any], executor: Any, inputs: Iterable[Path], size: int, workers: int) -> None:
        self.state, self.signature, self.executor, self.inputs = state, signature, executor, inputs
        self.size, self.workers = size, max(1, workers)
        self.count = 0
        self.run: dict[str, Any] = {}

    def partitions(self) -> Iterator[int]:
        state, size = self.state, self.size
        state.start(self.signature, [], 0)
        for old in state.folder.glob("files-*.json"):
            old.unlink()
        files = skipped = 0
        batch: list[str] = []
        small = min(size * self.workers * CHUNKS_PER_WORKER, _SMALL_RUN_CAP)
        for file, left_out in walk_tree(self._list_folders, self.inputs, self.signature["recursive"], self.executor.walk_lookahead()):
            skipped += left_out
            if file is None:
                continue
            batch.append(str(file))
            files += 1
            if files > small and len(batch) >= size:
                for i in range(0, len(batch) - size + 1, size):
                    yield self._save(batch[i : i + size])
                batch = batch[len(batch) - len(batch) % size :]
        cut = size if files > small else chunk_size(files, size, self.workers)
        for i in range(0, len(batch), cut):
            yield self._save(batch[i : i + cut])
        self.run = {"signature": self.signature, "discovered": True, "partitions": self.count, "files": files, "skipped": skipped}
        state.save_run(self.run)

    def _list_folders(self, folders: Iterable[str]) -> Iterator[FolderListing]:
        return self.executor.list_folders(folders, self.signature["include_raw"])

    def _save(self, part: list[str]) -> int:
        index = self.count
        self.state._write(_files_path(self.state, index), json.dumps(part))
        self.count += 1
        return index


def _files_path(state: RunState, index: int) -> Path:
    return state.folder / f"files-{index:06d}.json"


def _partition_files(state: RunState, index: int) -> list[str]:
    return json.loads(_files_path(state, index).read_text(encoding="utf-8"))


# -- tasks run on the workers -------------------------------------------------------------------------


def extract_partition(argument: tuple[str, int, RowOptions]) -> dict[str, Any]:
    """Read one partition's files and save its rows as a state chunk (the local run's task);
    return the chunk header."""
    folder, index, options = argument
    return extract_chunk((folder, index, _partition_files(RunState.at(Path(folder)), index), options))


def write_part(argument: tuple[str, int, list[str], str]) -> str:
    """One partition as a Parquet file with the table's full schema."""
    from .extract import _write_parquet

    folder, index, columns, target = argument
    state = RunState.at(Path(folder))
    _write_parquet(Path(target), columns, _row_lists(state, [index], columns))
    return target


def _publish_dataset(state: RunState, executor: Any, count: int, columns: list[str], output: Path, overwrite: bool) -> None:
    """Write every part into a temp folder beside `output`, then rename it into place."""
    import secrets

    for stale in output.parent.glob(f".{output.name}.*.part"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)  # a dataset a killed run was building
    staging = output.parent / f".{output.name}.{secrets.token_hex(4)}.part"
    staging.mkdir()
    try:
        parts = [(str(state.folder), k, columns, str(staging / PART_NAME.format(k))) for k in range(count)]
        if not parts:  # no file: one empty part still carries the schema
            from .extract import _write_parquet

            _write_parquet(staging / PART_NAME.format(0), columns, iter(()))
        for _ in executor.map_tasks(write_part, parts):
            pass
        if os.path.lexists(output):
            if not overwrite:
                raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {output}", "choose another path or set options.overwrite to true")
            _remove(output)
        os.rename(staging, output)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
