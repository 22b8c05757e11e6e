"""A long-lived contract-native program: `PROGRAM --stream`, one NDJSON request line in, one
response line out, the process kept between requests (start-up is paid once, not per request).

Used only when the program's `--capabilities` says `"stream": true`. A request that times out
kills the process (a new one starts for the next request); a process that dies answers with
whatever it printed, so the adapter reports the crash like a one-shot run.
"""

from __future__ import annotations

import atexit
import io
import os
import selectors
import subprocess
import threading
import time
import weakref

from dicom_hub.adapters.child_process import child_env, private_cwd
from dicom_hub.adapters.subprocess_adapter import ToolRun, _kill_group
from dicom_hub.contract.errors import ErrorCode, HubError

STREAM_FLAG = "--stream"
_SESSIONS: weakref.WeakSet[StreamSession] = weakref.WeakSet()


class StreamSession:
    """One `PROGRAM --stream` process, asked one request at a time (thread-safe)."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = [*argv, STREAM_FLAG]
        self._proc: subprocess.Popen[bytes] | None = None
        self._environ: dict[str, str] = {}
        self._owner = os.getpid()
        self._buffer = b""
        self._stderr: list[bytes] = []
        self._stderr_lock = threading.Lock()
        self._lock = threading.Lock()
        _SESSIONS.add(self)

    def ask(self, request_line: str, timeout: float) -> ToolRun:
        """Send one request line; the response line (stdout) and the stderr printed meanwhile."""
        with self._lock:
            start = time.perf_counter()
            proc = self._running()
            try:
                assert proc.stdin is not None
                proc.stdin.write(request_line.encode() + b"\n")
                proc.stdin.flush()
            except OSError:
                pass  # the process is gone: reading below collects its exit and output
            line, finished = self._read_line(proc, timeout)
            stderr = self._take_stderr()
            if line is None and not finished:
                self.close(kill=True)
                raise HubError(
                    ErrorCode.TIMEOUT,
                    f"{os.path.basename(self.argv[0])} did not answer within {timeout:g} s",
                    "raise options.timeout, or check that the input is not unusually large",
                    stderr=stderr,
                )
            if line is None:  # the process died without a full answer
                leftover, self._buffer = self._buffer, b""
                code = proc.wait()
                self._proc = None
                return ToolRun(self.argv, code, leftover.decode(errors="replace"), stderr, time.perf_counter() - start)
            return ToolRun(self.argv, 0, line.decode(errors="replace"), stderr, time.perf_counter() - start)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._owner != os.getpid():
            self._proc = None  # a forked worker: the parent's process and pipes are not ours to use
            self._stderr, self._stderr_lock = [], threading.Lock()  # the parent's drain thread may have held it
        if self._proc is not None and self._environ != os.environ:
            self.close()  # a one-shot run would see the current environment (e.g. options.key_env)
        if self._proc is None or self._proc.poll() is not None:
            self._environ = dict(os.environ)
            self._owner = os.getpid()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    cwd=private_cwd(),
                    env=child_env(),
                )
            except OSError as err:
                raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"cannot start {self.argv[0]}: {err.strerror}") from None
            self._buffer = b""
            threading.Thread(target=self._drain_stderr, args=(self._proc,), daemon=True).start()
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes | None, bool]:
        """(line, process finished); (None, False) on timeout."""
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None, False
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None, True
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line, False

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        stderr = proc.stderr
        assert isinstance(stderr, io.BufferedReader)  # stderr=PIPE with the default buffering
        for chunk in iter(lambda: stderr.read1(1 << 16), b""):
            with self._stderr_lock:
                self._stderr.append(chunk)

    def _take_stderr(self) -> str:
        time.sleep(0)  # let the drain thread catch up with what was printed before the answer
        with self._stderr_lock:
            text, self._stderr = b"".join(self._stderr), []
        return text.decode(errors="replace")

    def close(self, kill: bool = False) -> None:
        """End the process: closing stdin ends a well-behaved stream; `kill` (or no exit within
        2 s) kills its process group."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None or self._owner != os.getpid():
            return
        if kill:
            _kill_group(proc)
            proc.wait()
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            _kill_group(proc)
            proc.wait()


@atexit.register
def _close_all() -> None:
    for session in list(_SESSIONS):
        session.close()
