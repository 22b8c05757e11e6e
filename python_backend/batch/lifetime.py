"""Worker processes die with the process that started them.

A batch killed with `kill -9` cannot clean up after itself, and a process pool's workers are not
told: without this they go on reading and writing until their queue is empty (or forever, blocked
on a pipe nobody reads). Two mechanisms, both installed by `bind_to_parent` in a worker's
initializer:
- Linux: `prctl(PR_SET_PDEATHSIG, SIGKILL)` — the kernel kills the worker the moment its parent
  dies (checked right after, in case the parent died before the call);
- everywhere: a daemon thread that polls the parent id and exits the process once the parent has
  gone (the worker is then re-parented, so `getppid()` changes).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


def bind_to_parent(parent_pid: int | None = None) -> None:
    """Make this process end when `parent_pid` (default: the current parent) ends."""
    parent = os.getppid() if parent_pid is None else parent_pid
    _death_signal()
    if os.getppid() != parent:  # the parent died before we were bound to it
        os._exit(1)
    watchdog = threading.Thread(target=_watch, args=(parent,), name="dicom-hub-parent-watch", daemon=True)
    watchdog.start()


def watch_process(pid: int) -> None:
    """End this process once the (unrelated) process `pid` has gone; for workers of a local
    Dask cluster, whose parent is a nanny rather than the client that started them."""
    watchdog = threading.Thread(target=_watch_pid, args=(pid,), name="dicom-hub-client-watch", daemon=True)
    watchdog.start()


def _death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl: the watchdog alone does the job
        pass


def _watch(parent: int) -> None:
    import time

    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)


def _watch_pid(pid: int) -> None:
    import time

    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # exists, owned by someone else: still alive
            pass
        time.sleep(WATCH_INTERVAL_S)
