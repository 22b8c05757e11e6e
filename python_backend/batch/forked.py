"""Worker processes for the local executor's chunks, forked directly: one pipe each way per
worker, no manager thread, no queue feeder thread, no `multiprocessing` import.

Why: `concurrent.futures.ProcessPoolExecutor` costs a batch 30-50 ms before its first file
(importing `multiprocessing`, building its queues and semaphores) and two thread hand-overs per
chunk, where a 174-slice series is ~0.2 s of work. What `runner` relies on is kept:
`submit(chunk)` returns a future (`done()`, `result()`); a chunk function's exception
(`MemoryError`) is raised by `result()`; a worker that dies (a crash in native code, the OOM
killer) makes every chunk it held raise `WorkerDied`, and the pool takes no more work.

Messages are pickles preceded by their length. A worker runs its chunks in the order it got
them, so its results come back in that order. The parent reads results whenever it sends (a
worker blocked on a full result pipe cannot stall a parent blocked on a full task pipe).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

_LENGTH = struct.Struct("<Q")


class WorkerDied(Exception):
    """A worker process ended while it held chunks."""


class ChunkFuture:
    """The outcome of one chunk given to one worker."""

    __slots__ = ("outcome", "worker")

    def __init__(self, worker: _Worker | None, outcome: tuple[bool, Any] | None = None) -> None:
        self.worker, self.outcome = worker, outcome

    def done(self) -> bool:
        if self.outcome is None and self.worker is not None:
            self.worker.collect(block=False)
        return self.outcome is not None

    def result(self) -> Any:
        while self.outcome is None:
            assert self.worker is not None
            self.worker.collect(block=True)
        ok, value = self.outcome
        if ok:
            return value
        raise value


class ForkedWorkers:
    """`workers` processes forked now, each running `initializer(*initargs)` once, then
    `serve(chunk)` for each chunk it is given."""

    def __init__(self, workers: int, serve: Callable[[Any], Any], initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        import gc

        self.workers: list[_Worker] = []
        # A forked worker shares the parent's memory until it writes to it; a collection in the
        # worker would write to every object it visits: frozen while forking, unfrozen after.
        gc.freeze()
        try:
            for _ in range(workers):
                self.workers.append(_Worker.fork(serve, initializer, initargs))
        except BaseException:
            self.close(wait=False)  # the system refused a fork (EAGAIN): no worker left behind
            raise
        finally:
            gc.unfreeze()

    def submit(self, chunk: Any) -> ChunkFuture:
        """The chunk, to the worker with the fewest chunks waiting; once a worker has died, a
        future that says so (the caller replaces the pool)."""
        if any(worker.dead for worker in self.workers):
            return ChunkFuture(None, (False, WorkerDied("a worker process died")))
        worker = min(self.workers, key=lambda w: len(w.waiting))
        future = ChunkFuture(worker)
        worker.send(pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL), future)
        return future

    def close(self, wait: bool) -> None:
        """No more work. `wait`: let the workers finish what they hold and exit; else end them
        now (the run is abandoned; a temp file a worker leaves is removed by the next run)."""
        for worker in self.workers:
            worker.stop(wait)


class _Worker:
    # The parent's ends of every worker's pipes: a new worker closes its copies, else a worker
    # would not see the end of its task pipe while a sibling still held it open.
    parent_ends: set[int] = set()

    def __init__(self, pid: int, tasks: int, results: int) -> None:
        self.pid, self.tasks, self.results = pid, tasks, results
        self.waiting: deque[ChunkFuture] = deque()
        self.dead = False
        _Worker.parent_ends |= {tasks, results}

    @classmethod
    def fork(cls, serve: Callable[[Any], Any], initializer: Callable[..., None], initargs: tuple[Any, ...]) -> _Worker:
        task_read, task_write = os.pipe()
        result_read, result_write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (task_read, task_write, result_read, result_write):
                os.close(fd)
            raise
        if pid == 0:  # the worker: never returns
            code = 1
            try:
                for fd in (task_write, result_read, *_Worker.parent_ends):
                    os.close(fd)
                _Worker.parent_ends = set()
                initializer(*initargs)
                _serve(serve, task_read, result_write)
                code = 0
            finally:
                os._exit(code)
        os.close(task_read)
        os.close(result_write)
        return cls(pid, task_write, result_read)

    def send(self, data: bytes, future: ChunkFuture) -> None:
        self.waiting.append(future)
        message = memoryview(_LENGTH.pack(len(data)) + data)
        poller = select.poll()
        poller.register(self.tasks, select.POLLOUT)
        poller.register(self.results, select.POLLIN)
        try:
            while message:
                events = dict(poller.poll())
                if events.get(self.tasks, 0) & select.POLLOUT:
                    message = message[os.write(self.tasks, message) :]
                elif events.get(self.tasks, 0) & (select.POLLERR | select.POLLHUP):
                    raise BrokenPipeError
                else:  # the worker waits for its results to be read
                    self.collect(block=True)
                    if self.dead:
                        return
        except OSError:  # the worker is gone (EPIPE)
            while not self.dead and self.waiting:
                self.collect(block=True)

    def collect(self, block: bool) -> None:
        """Read the next result, if one is there (or wait for it): it is the oldest waiting
        chunk's. At the end of the pipe, the worker is dead: every waiting chunk says so."""
        if self.dead or not self.waiting:
            return
        if not block:
            poller = select.poll()
            poller.register(self.results, select.POLLIN)
            if not poller.poll(0):
                return
        header = _read_exactly(self.results, _LENGTH.size)
        body = _read_exactly(self.results, _LENGTH.unpack(header)[0]) if header is not None else None
        if body is None:
            self._died()
            return
        self.waiting.popleft().outcome = pickle.loads(body)

    def _died(self) -> None:
        self.dead = True
        self._reap()
        while self.waiting:
            self.waiting.popleft().outcome = (False, WorkerDied(f"worker process {self.pid} died"))

    def stop(self, wait: bool) -> None:
        for fd in (self.tasks, self.results):
            _Worker.parent_ends.discard(fd)
        if self.tasks >= 0:
            os.close(self.tasks)
            self.tasks = -1
        if not self.dead and (self.waiting or not wait):  # never wait on a worker with results unread
            import signal

            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._reap()
        if self.results >= 0:
            os.close(self.results)
            self.results = -1

    def _reap(self) -> None:
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def _serve(serve: Callable[[Any], Any], tasks: int, results: int) -> None:
    """The worker's loop: a chunk in, its outcome out, until the parent closes the pipe."""
    while True:
        header = _read_exactly(tasks, _LENGTH.size)
        if header is None:
            return
        body = _read_exactly(tasks, _LENGTH.unpack(header)[0])
        if body is None:
            return
        try:
            outcome: tuple[bool, Any] = (True, serve(pickle.loads(body)))
        except BaseException as err:  # noqa: BLE001 - MemoryError and the like: the parent decides
            outcome = (False, err)
        try:
            data = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        except Exception as err:  # an exception that does not pickle
            data = pickle.dumps((False, RuntimeError(f"{type(outcome[1]).__name__}: {err}")), pickle.HIGHEST_PROTOCOL)
        message = memoryview(_LENGTH.pack(len(data)) + data)
        while message:
            message = message[os.write(results, message) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    """`size` bytes from `fd`; None at the end of the pipe (a closed or dead peer)."""
    parts = []
    while size:
        try:
            part = os.read(fd, min(size, 1 << 20))
        except OSError:
            return None
        if not part:
            return None
        parts.append(part)
        size -= len(part)
    return b"".join(parts)
