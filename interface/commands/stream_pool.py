"""`dicom-hub run --stream` on every core: request lines answered by forked worker processes.

Why processes: the in-process backend holds the GIL, so threads would not run two requests at once.
Why fork: the parent has already imported what the first lines needed while answering them
itself, so a worker starts warm in about a millisecond: the fast lane only, for a stream of plain
`info` requests (a worker then imports pydicom itself if a later request needs it), else the
dispatcher and pydicom too.

The parent is one thread around one `select` loop. It reads stdin in chunks and splits lines
itself, sends each line to the least busy worker (about QUEUED_SECONDS of work queued per worker
at its recent pace, 4 to 32 lines, sent in one write; answered in the order sent, so a worker that
dies owes exactly one answer: the first unanswered line; the lines queued behind it go to another
worker), and writes the answers in input order (by sequence number) or,
unordered, as they come. It reads no more stdin while `in_flight` lines are unanswered, so an
endless stream or a slow reader of stdout keeps memory flat. A worker that dies (a native
decoder that aborts) gives its request a `backend_error` response and is replaced; workers are
killed when the parent dies (`PR_SET_PDEATHSIG`) and end when their request pipe closes.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field

from dicom_hub.contract.errors import ErrorCode, HubError

# (line number, request line bytes) -> (response JSON, exit code of that response)
Answer = Callable[[int, bytes], tuple[str, int]]
FastAnswer = Callable[[int, bytes], tuple[str, int] | None]
ANSWER_BATCH = 8  # fast-lane answers a worker writes at once (sooner when it runs out of requests)
CHUNK = 1 << 16
PIPELINE = 32  # most requests sent ahead to one worker (for quick answers; PIPELINE_MIN for slow ones)
PIPELINE_MIN = 4
QUEUED_SECONDS = 0.01  # the work a worker is given ahead, at its recent pace
PIPELINE_BYTES = 32768  # most request bytes sent ahead to one worker: half a pipe's 64 KiB
# Test-only: a worker aborts (SIGABRT, as a crashing native decoder would) on this request line
# number. Only the environment can set it, never a request's content.
CRASH_HOOK_ENV = "DICOM_HUB_TEST_WORKER_ABORT_LINE"
_PR_SET_PDEATHSIG = 1


class LineReader:
    """Lines of a file descriptor, read in chunks: `read_chunk` never blocks after `select` said
    the descriptor is readable, and lines are handed out one at a time (the rest waits in the
    buffer, at most one chunk plus a partial line)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.at_end = False
        self._start = 0

    def read_chunk(self) -> None:
        chunk = os.read(self.fd, CHUNK)
        if not chunk:
            self.at_end = True
        self.buffer = self.buffer[self._start :] + chunk
        self._start = 0

    @property
    def exhausted(self) -> bool:
        """At the end of the input, every line handed out."""
        return self.at_end and self._start >= len(self.buffer)

    def next_line(self) -> bytes | None:
        """The next line with its newline (the last line may lack one), or None for now."""
        end = self.buffer.find(b"\n", self._start)
        if end < 0:
            if not self.at_end or self._start >= len(self.buffer):
                return None
            end = len(self.buffer) - 1
        line = self.buffer[self._start : end + 1]
        self._start = end + 1
        return line

    def blocking_lines(self) -> Iterator[bytes]:
        while True:
            line = self.next_line()
            if line is not None:
                yield line
            elif self.at_end:
                return
            else:
                self.read_chunk()


@dataclass
class _Worker:
    pid: int
    to_worker: int  # the parent's write end of the request pipe
    from_worker: int  # the parent's read end of the answer pipe
    buffer: bytes = b""
    queued: int = 0  # bytes of the request messages in `tasks`
    # (sequence, line number, line) sent and not answered yet, answered in this order: the first
    # is the one under way (the one a dead worker owes), the others are still unread or queued.
    tasks: deque[tuple[int, int, bytes]] = field(default_factory=deque)
    pace: float = 0.0  # seconds per answer lately (0: not known yet)
    since: float = 0.0  # when the answers now under way were started

    def room_for(self, size: int) -> bool:
        """An idle worker takes any line; a busy one takes lines up to its depth and PIPELINE_BYTES."""
        return not self.tasks or (len(self.tasks) < self.depth() and self.queued + size <= PIPELINE_BYTES)

    def depth(self) -> int:
        """About QUEUED_SECONDS of work: deep for quick answers (fewer turns of the loop), shallow
        for slow ones (a line queued behind a slow request waits, while another worker may idle)."""
        if not self.pace:
            return PIPELINE_MIN
        return max(PIPELINE_MIN, min(PIPELINE, int(QUEUED_SECONDS / self.pace)))

    def answered(self, count: int, now: float) -> None:
        seconds = (now - self.since) / count
        self.pace = seconds if not self.pace else 0.7 * self.pace + 0.3 * seconds
        self.since = now


@dataclass
class StreamPool:
    """Answer every request line of `reader` with `jobs` workers; return the worst exit code."""

    answer: Answer
    write: Callable[[list[bytes]], None]  # writes response lines (UTF-8 JSON, no newline) and flushes
    jobs: int
    ordered: bool = True
    fast: FastAnswer = lambda number, line: None  # the fast lane's answer (pure Python, never crashes a worker), or None
    in_flight: int = 0  # most lines read but not yet written; 0: 2 * PIPELINE per worker
    workers: list[_Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.in_flight = self.in_flight or 2 * PIPELINE * self.jobs
        self._waiting: deque[tuple[int, int, bytes]] = deque()  # read, not yet given to a worker
        self._done: dict[int, bytes] = {}  # answered, waiting for the earlier lines (ordered mode)
        self._out: list[bytes] = []  # answers to write at the end of this turn of the loop
        self._next_seq = 0  # the next line's sequence number
        self._next_out = 0  # the sequence number to write next (ordered mode)
        self._written = 0
        self.worst = 0

    def run(self, reader: LineReader, number: int) -> int:
        """Serve `reader` to its end; `number` is the line number of the last line already read."""
        from dicom_hub.adapters.child_process import private_cwd

        private_cwd()  # made before forking: the workers share it and this process removes it at exit
        gc.freeze()  # the garbage collector of a worker then never walks (and so copies) the parent's objects
        for _ in range(self.jobs):
            self.workers.append(self._start_worker())
        with selectors.PollSelector() as selector:  # poll, unlike epoll, takes a regular file too
            try:
                self._loop(selector, reader, number)
            except BaseException:  # e.g. Ctrl-C or a closed stdout: do not wait for requests under way
                self.close(kill=True)
                raise
            self.close()
        return self.worst

    def _loop(self, selector: selectors.BaseSelector, reader: LineReader, number: int) -> None:
        for worker in self.workers:
            selector.register(worker.from_worker, selectors.EVENT_READ, worker)
        stdin_registered = False
        while True:
            number = self._take_lines(reader, number)
            self._hand_out()
            if self._out:  # one write and flush per turn, not per line
                self.write(self._out)
                self._out = []
            if reader.exhausted and self._written == self._next_seq:
                return
            want_stdin = not reader.at_end and self._window_open()
            if want_stdin != stdin_registered:
                if want_stdin:
                    selector.register(reader.fd, selectors.EVENT_READ)
                else:
                    selector.unregister(reader.fd)
                stdin_registered = want_stdin
            for key, _ in selector.select():
                if key.data is None:
                    reader.read_chunk()
                else:
                    self._collect(key.data, selector)

    def _window_open(self) -> bool:
        return self._next_seq - self._written < self.in_flight

    def _take_lines(self, reader: LineReader, number: int) -> int:
        """Queue the complete lines already read, as far as the in-flight window allows."""
        while self._window_open():
            line = reader.next_line()
            if line is None:
                break
            number += 1
            if line.strip():
                self._waiting.append((self._next_seq, number, line))
                self._next_seq += 1
        return number

    def _hand_out(self) -> None:
        """Waiting lines, one at a time to the worker with the fewest that has room (its depth,
        PIPELINE_BYTES; a longer line only to an idle worker), so a worker never
        waits for this loop and what is sent stays below a pipe's buffer: writing never blocks on
        a worker that is itself blocked writing its answers. One write per worker per turn."""
        batches: dict[int, list[bytes]] = {}
        now = time.monotonic()
        while self._waiting:
            seq, number, line = self._waiting[0]
            message = _message(number, line)
            takers = [w for w in self.workers if w.room_for(len(message))]
            if not takers:
                break
            worker = min(takers, key=lambda w: len(w.tasks))
            if not worker.tasks:
                worker.since = now
            worker.tasks.append(self._waiting.popleft())
            worker.queued += len(message)
            batches.setdefault(worker.pid, []).append(message)
        for worker in self.workers:
            if worker.pid in batches:
                with suppress(BrokenPipeError):  # the worker is dead: `_replace` answers or re-queues its lines
                    _write_all(worker.to_worker, b"".join(batches[worker.pid]))

    def _collect(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        chunk = os.read(worker.from_worker, CHUNK)
        if not chunk:
            self._replace(worker, selector)
            return
        *answers, worker.buffer = (worker.buffer + chunk).split(b"\n")
        for answer in answers:
            code, _, text = answer.partition(b" ")
            seq, number, line = worker.tasks.popleft()
            worker.queued -= len(_message(number, line))
            self._finish(seq, text, int(code))
        if answers:
            worker.answered(len(answers), time.monotonic())

    def _finish(self, seq: int, text: bytes, code: int) -> None:
        self.worst = max(self.worst, code)
        if not self.ordered:
            self._out.append(text)
            self._written += 1
            return
        self._done[seq] = text
        while self._next_out in self._done:
            self._out.append(self._done.pop(self._next_out))
            self._next_out += 1
            self._written += 1

    def _replace(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        """A worker died: its request gets a typed error, a new worker takes its place."""
        selector.unregister(worker.from_worker)
        os.close(worker.from_worker)
        os.close(worker.to_worker)
        _, status = os.waitpid(worker.pid, 0)
        self.workers.remove(worker)
        fresh = self._start_worker()
        self.workers.append(fresh)
        selector.register(fresh.from_worker, selectors.EVENT_READ, fresh)
        if worker.tasks:
            seq, number, line = worker.tasks.popleft()
            text, code = _crash_answer(number, line, status)
            self._finish(seq, text.encode("utf-8"), code)
            self._waiting.extendleft(reversed(worker.tasks))  # not started: another worker takes them

    def _start_worker(self) -> _Worker:
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                for other in self.workers:  # else a dead worker's pipe would stay open in its siblings
                    os.close(other.to_worker)
                    os.close(other.from_worker)
                os.close(requests_w)
                os.close(answers_r)
                _serve(requests_r, answers_w, parent, self.answer, self.fast)
            finally:
                os._exit(0)
        os.close(requests_r)
        os.close(answers_w)
        return _Worker(pid, requests_w, answers_r)

    def close(self, kill: bool = False) -> None:
        """Closing a worker's request pipe ends it; wait, so none outlives the stream."""
        for worker in self.workers:
            os.close(worker.to_worker)
            if kill:
                os.kill(worker.pid, signal.SIGKILL)
        for worker in self.workers:
            os.close(worker.from_worker)
            with suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
        self.workers.clear()


def _serve(requests_fd: int, answers_fd: int, parent: int, answer: Answer, fast: FastAnswer) -> None:
    """The worker's loop: one `<number> <line>` in, one `<exit code> <response JSON>` out, in order.
    Answers of the fast lane are written a few at a time (fewer wake-ups of the parent); any other
    request is answered alone, after every earlier answer is written, so a worker that dies owes
    exactly the request under way."""
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C ends the parent, and the parent ends us
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # stdin is the parent's: a worker must never read a request line from it
    os.dup2(2, 1)  # a stray print must never reach the parent's stdout
    os.close(devnull)
    crash_line = int(os.environ.get(CRASH_HOOK_ENV) or 0)
    requests = LineReader(requests_fd)
    ready: list[bytes] = []  # answers not yet written: only ones of the fast lane, which cannot crash this process
    while True:
        raw = requests.next_line()
        if raw is None:  # about to wait for requests: the parent gets every answer ready
            _write_answers(answers_fd, ready)
            if requests.at_end:
                break
            requests.read_chunk()
            continue
        number_text, _, line = raw.partition(b" ")
        number = int(number_text)
        if number == crash_line:
            _write_answers(answers_fd, ready)
            os.abort()
        quick = fast(number, line)
        if quick is None:  # this request may crash this process: every earlier one is answered first
            _write_answers(answers_fd, ready)
        text, code = quick or answer(number, line)
        ready.append(b"%d " % code + text.encode("utf-8") + b"\n")
        if quick is None or len(ready) >= ANSWER_BATCH:
            _write_answers(answers_fd, ready)
    _close_sessions()


def _write_answers(fd: int, ready: list[bytes]) -> None:
    if ready:
        _write_all(fd, b"".join(ready))
        ready.clear()


def _die_with_parent() -> None:
    import ctypes

    with suppress(OSError, AttributeError):  # not Linux: workers still end when their pipe closes
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _close_sessions() -> None:
    """End the long-lived backend programs this worker started (os._exit skips atexit); a worker
    that never loaded the module that starts them has none (and need not pay for its import)."""
    import sys

    contract_stream = sys.modules.get("dicom_hub.adapters.contract_stream")
    if contract_stream is not None:
        contract_stream._close_all()


def _crash_answer(number: int, line: bytes, status: int) -> tuple[str, int]:
    from dicom_hub.adapters.dispatch import _echo_fields, error_response, response_json
    from dicom_hub.contract.errors import exit_code_for

    how = f"signal {_signal_name(os.WTERMSIG(status))}" if os.WIFSIGNALED(status) else f"exit code {os.waitstatus_to_exitcode(status)}"
    err = HubError(
        ErrorCode.BACKEND_ERROR,
        f"the worker process answering request line {number} died ({how}) before answering; the stream went on with a new worker",
        "the input probably crashes a native decoder: run this request alone with `dicom-hub --debug run` to see where, and report it with the input",
    )
    try:
        echo = _echo_fields(json.loads(line))
    except (ValueError, RecursionError):
        echo = {}
    return response_json(error_response(err, echo)), exit_code_for(err.code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _message(number: int, line: bytes) -> bytes:
    """What a worker is sent for one request line: `<number> <line>` and a newline."""
    return b"%d " % number + (line if line.endswith(b"\n") else line + b"\n")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
