"""The `dask` executor: a batch's per-file work as tasks on a Dask distributed cluster.

Each task is a chunk of files run by `runner.run_files`, the very function the local pool runs,
so results (values, `{path, code, message}` errors, bytes written) are the local executor's.
The function and its context are scattered to every worker once. The client keeps a bounded
window of chunks in flight (`runner.ChunkWindow`, as the local pool) and yields outcomes in input
order. A task costs the client, the scheduler and the worker a few ms of CPU each, so a chunk
holds 16-1024 files, travels as one string (`pack_chunk`) and comes back as None when every file
went plainly, else as one pickle (`pack_results`): a result goes through the scheduler, and Dask
looks into a list item by item on each hop (a list of 256 results cost 13 ms more per task than
bytes). The files come from a walk whose folder listings are tasks too (`list_folders`), so the
client's memory does not grow with the number of files.

A worker that dies mid-task has its task rerun elsewhere by the scheduler; outputs it already
wrote are recognised as identical (`verify_existing`), so each file is counted once. A task that
kills every worker it lands on (`KilledWorker`) is split into its files, and a file that still
kills its worker becomes that file's `backend_error`; the batch goes on.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError

from .runner import (
    ChunkDone,
    ChunkWindow,
    FileFunc,
    FileOutcome,
    FileResult,
    WorkItem,
    died,
    expand,
    run_files,
)

# A task costs the client, the scheduler and the worker ~10 ms of CPU between them (messages,
# bookkeeping), the work of 10-50 files: chunks are bigger than the local pool's, and never tiny.
# They grow fast (each worker gets a chunk of every 2 files seen so far), up to the most a worker
# should hold when the run ends while another waits (1024 files: 0.3-0.5 s of anonymizing). A
# function that may crash its process (native decoders: not `runner.runs_in_parent`) gets at most
# 256: a chunk that kills its workers is retried file by file, one task each.
_MIN_CHUNK = 16
_MAX_CHUNK = 1024
_MAX_CHUNK_MAY_CRASH = 256
_CHUNKS_PER_WORKER = 2
_WINDOW_PER_WORKER = 4
# `map_tasks` tasks in flight per worker: a round trip takes longer than a small task (a CSV part
# of a few hundred rows), so several wait at each worker.
_TASKS_PER_WORKER = 8
CONNECT_TIMEOUT_S = 15
_LISTING_PRIORITY = 10
PRELOAD = "dicom_hub.python_backend.batch.dask_preload"  # for `dask worker|scheduler --preload`


class DaskExecutor:
    """A connection to a Dask cluster (an existing scheduler, or a local cluster started here)."""

    name = "dask"

    def __init__(self, address: str | None, workers: int | None = None) -> None:
        try:
            import distributed
        except ImportError:
            raise HubError(
                ErrorCode.BACKEND_UNAVAILABLE,
                "the dask executor needs dask.distributed, which is not installed",
                "pip install 'dicom-hub[distributed]', or use options.executor = 'local'",
            ) from None
        self.address = address
        self.cluster: Any = None
        if address is None:
            self.cluster = _local_cluster(distributed, workers)
            target: Any = self.cluster
        else:
            target = address
        try:
            self.client = distributed.Client(target, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as err:
            self._stop_cluster()
            raise HubError(
                ErrorCode.NETWORK_ERROR,
                f"cannot reach the Dask scheduler at {address}: {err}",
                "start it (`dask scheduler`), check options.scheduler / $DICOM_HUB_DASK_SCHEDULER, or leave both unset for a local cluster",
            ) from None
        if self.cluster is not None:
            self.client.register_plugin(_watch_client_plugin(os.getpid()), name="dicom-hub-watch-client")

    # -- what the response and the user see ---------------------------------------------------------

    @property
    def dashboard_link(self) -> str | None:
        services = self.client.scheduler_info().get("services", {})
        return self.client.dashboard_link if "dashboard" in services else None

    def worker_count(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> dict[str, Any]:
        scheduler = self.client.scheduler
        info: dict[str, Any] = {"executor": "dask", "dask_scheduler": scheduler.address if scheduler is not None else None, "dask_workers": self.worker_count()}
        if self.dashboard_link:
            info["dask_dashboard"] = self.dashboard_link
        return info

    # -- running ---------------------------------------------------------------------------------

    def run(self, items: Iterable[WorkItem], func: FileFunc, context: Any, verify: bool, total: int | None = None) -> Iterator[FileOutcome]:
        """Every file's outcome, in input order; `items` is read as chunks go out."""
        return expand(self.run_chunks(items, func, context, verify, total))

    def run_chunks(self, items: Iterable[WorkItem], func: FileFunc, context: Any, verify: bool, total: int | None = None) -> Iterator[FileOutcome | ChunkDone]:
        """`run`, a chunk at a time (`runner.iter_chunks`)."""
        workers = max(1, self.worker_count())
        largest = _MAX_CHUNK if getattr(func, "runs_in_parent", False) else min(_MAX_CHUNK, _MAX_CHUNK_MAY_CRASH)
        (payload,) = self.client.scatter([(func, context)], broadcast=True, hash=False)
        window = ChunkWindow(
            lambda chunk: self._submit(payload, chunk, verify), workers, workers * _WINDOW_PER_WORKER, largest, total,
            min_chunk=min(_MIN_CHUNK, largest), chunks_per_worker=_CHUNKS_PER_WORKER,
        )  # fmt: skip

        def finish(chunk: list[tuple[Any, Any]], future: Any) -> ChunkDone:
            from distributed import KilledWorker

            try:
                return ChunkDone(chunk, unpack_results(future.result()))
            except KilledWorker:
                return ChunkDone(chunk, self._isolate(chunk, payload))

        try:
            yield from window.run(items, finish)
        finally:
            for future in window.futures():
                future.cancel()

    def map_tasks(self, function: Any, arguments: Iterable[Any], window: int | None = None, priority: int = 0) -> Iterator[Any]:
        """`function(argument)` as one task each, results in order, a bounded window in flight;
        a higher `priority` runs before the tasks already waiting."""
        window = window or max(1, self.worker_count()) * _TASKS_PER_WORKER
        pending: deque = deque()
        try:
            for argument in arguments:
                pending.append(self.client.submit(function, argument, pure=False, priority=priority))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def walk_lookahead(self) -> int:
        """Folders listed per round trip of a walk: enough to give every worker a few tasks, and
        few round trips (each waits for a worker); the listings held are bounded by this."""
        return max(256, 64 * self.worker_count())

    def list_folders(self, folders: Iterable[str], include_raw: bool) -> Iterator[Any]:
        """`discovery.list_folder` for each folder, in order: a few folders per task (a task
        costs more than listing a small folder), two tasks per worker in flight, run before the
        file chunks already waiting (the walk feeds those chunks: it must not wait behind them)."""
        folders = list(folders)
        tasks = max(1, self.worker_count()) * 2
        size = max(1, -(-len(folders) // tasks))
        groups = [(folders[i : i + size], include_raw) for i in range(0, len(folders), size)]
        for listings in self.map_tasks(list_folders_task, groups, window=len(groups), priority=_LISTING_PRIORITY):
            yield from listings

    def _submit(self, payload: Any, chunk: list[tuple[Any, Any]], verify: bool) -> Any:
        return self.client.submit(run_chunk_task, payload, pack_chunk(chunk), verify, pure=False)

    def _isolate(self, chunk: list[tuple[Any, Any]], payload: Any) -> list[FileResult]:
        """Each file of a chunk that killed every worker it ran on, alone."""
        from distributed import KilledWorker

        results: list[FileResult] = []
        for item in chunk:
            try:
                results += ChunkDone([item], unpack_results(self._submit(payload, [item], True).result())).file_results()
            except KilledWorker:
                results.append(died(item[0]))
        return results

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self._stop_cluster()

    def _stop_cluster(self) -> None:
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def run_chunk_task(payload: tuple[FileFunc, Any], chunk: str, verify: bool) -> bytes | None:
    """The task: one chunk of files on a worker (`pack_results` of what the local pool returns)."""
    func, context = payload
    return pack_results(run_files(func, context, unpack_chunk(chunk), verify))


def pack_chunk(chunk: list[tuple[Any, Any]]) -> str:
    """A chunk as one string, `source NUL target NUL ...` (no target: empty; a path holds no NUL).
    Dask looks into a list argument item by item, and pickles `Path`s the slow way: one string
    costs the client, the scheduler and the worker the least."""
    return "\0".join(f"{source}\0{'' if target is None else target}" for source, target in chunk)


def unpack_chunk(text: str) -> list[tuple[str, str | None]]:
    if not text:
        return []
    parts = text.split("\0")
    return [(parts[i], parts[i + 1] or None) for i in range(0, len(parts), 2)]


def pack_results(results: list[FileResult] | None) -> bytes | None:
    """A chunk's results as they travel back: None (every file went plainly), else one pickle."""
    import pickle

    return None if results is None else pickle.dumps(results, pickle.HIGHEST_PROTOCOL)


def unpack_results(packed: bytes | None) -> list[FileResult] | None:
    import pickle

    return None if packed is None else pickle.loads(packed)


def list_folders_task(argument: tuple[list[str], bool]) -> list[Any]:
    """The task: list a few folders (and sniff their extensionless files)."""
    from .discovery import list_folder

    folders, include_raw = argument
    return [list_folder(folder, include_raw) for folder in folders]


def _local_cluster(distributed: Any, workers: int | None) -> Any:
    """A cluster on this machine for one run: 127.0.0.1 only (scheduler, workers and dashboard,
    on free ports), one thread per worker process (the per-file work is CPU-bound Python), the
    workers and the scheduler preloaded (`dask_preload`: the ops' modules loaded, no sampling
    profiler, a slower latency tick)."""
    import logging

    from .runner import default_workers

    dashboard = "127.0.0.1:0"
    return distributed.LocalCluster(
        n_workers=workers or default_workers(),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=dashboard,
        silence_logs=logging.ERROR,
        preload=[PRELOAD],
        scheduler_kwargs={"preload": [PRELOAD]},
    )


def _watch_client_plugin(pid: int) -> Any:
    """A worker plugin for a cluster this client started: its workers end when the client does
    (even by `kill -9`), so no worker outlives the run that owns it."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class WatchClient(WorkerPlugin):
        idempotent = True

        def setup(self, worker: Any) -> None:
            from dicom_hub.python_backend.batch.lifetime import watch_process

            watch_process(pid)

    return WatchClient()


def announce(executor: Any, enabled: bool) -> None:
    """Tell a person watching where the Dask dashboard is."""
    link = getattr(executor, "dashboard_link", None)
    if enabled and link:
        print(f"Dask dashboard: {link}", file=sys.stderr)
