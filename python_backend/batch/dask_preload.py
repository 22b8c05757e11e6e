"""A `dask worker|scheduler --preload` module: on a worker, the batch ops' code and tables loaded
when it starts and two periodic callbacks stopped; on the scheduler, its latency tick slowed.

    dask scheduler --preload dicom_hub.python_backend.batch.dask_preload
    dask worker tcp://scheduler:8786 --preload dicom_hub.python_backend.batch.dask_preload

Without it, each worker process loads them during its first task of the first job (~0.3-0.5 s
of CPU per worker), which a long-lived cluster pays once anyway; with it, no job pays it. Two
of the worker's periodic callbacks are stopped too, CPU taken from the per-file work for views
the batch ops do not need: the sampling profiler (it reads the running task's stack 100 times a
second) and the event-loop latency tick (50 times a second). Measured on an idle worker: 45 ms
of CPU per second with both, 10 without. The scheduler measures its event loop's latency 50
times a second as well (27 ms of CPU per second when idle, 9 without): once a second still
shows a loop that stalls (it is logged after 3 s), and the dashboard stays as it is.
"""

from __future__ import annotations

from typing import Any

# Periodic callbacks of a worker that the batch ops can do without (`Worker.periodic_callbacks`).
STOPPED = ("profile", "tick")
SCHEDULER_TICK_MS = 1000


def dask_setup(server: Any) -> None:
    """Called by a worker or the scheduler once it has loaded this module."""
    from distributed import Scheduler

    if isinstance(server, Scheduler):
        tick = server.periodic_callbacks.get("tick")
        if tick is not None:
            tick.callback_time = SCHEDULER_TICK_MS
        return
    warm_up()
    for name in STOPPED:
        callback = server.periodic_callbacks.pop(name, None)
        if callback is not None:
            callback.stop()


def warm_up() -> None:
    """Import what the per-file functions use and build the tables they read."""
    from dicom_hub.contract.dicom.deid import iods
    from dicom_hub.contract.dicom.deid.profile import profile_for
    from dicom_hub.python_backend.batch import extract, flatten, runner  # noqa: F401
    from dicom_hub.python_backend.deid import bytes_engine, ops  # noqa: F401

    profile_for(())
    iods.load()
