"""A `dask worker --preload` module: the batch ops' code and tables loaded when a worker starts.

    dask worker tcp://scheduler:8786 --preload dicom_hub.python_backend.batch.dask_preload

Without it, each worker process loads them during its first task of the first job (~0.3-0.5 s
of CPU per worker), which a long-lived cluster pays once anyway; with it, no job pays it. The
worker's sampling profiler is turned off too: it reads the running task's stack 100 times a
second, CPU taken from the per-file work, for a dashboard view the batch ops do not need.
"""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by the worker once it has loaded this module, before its periodic callbacks start."""
    warm_up()
    profiler = worker.periodic_callbacks.pop("profile", None)
    if profiler is not None:
        profiler.stop()


def warm_up() -> None:
    """Import what the per-file functions use and build the tables they read."""
    from dicom_hub.contract.dicom.deid import iods
    from dicom_hub.contract.dicom.deid.profile import profile_for
    from dicom_hub.python_backend.batch import extract, flatten, runner  # noqa: F401
    from dicom_hub.python_backend.deid import bytes_engine, ops  # noqa: F401

    profile_for(())
    iods.warm_up()
