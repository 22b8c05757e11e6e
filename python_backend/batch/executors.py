"""Where a batch's per-file work runs: `options.executor`.

- `local` (default): a process pool on this machine, `options.workers` processes.
- `dask`: tasks on a Dask distributed cluster — the one at `options.scheduler` or the
  `DICOM_HUB_DASK_SCHEDULER` environment variable (`tcp://host:8786`), else a local cluster of
  `options.workers` worker processes started for the run and stopped after it. Inputs and outputs
  must be on a file system every worker sees at the same path.

Both run the same module-level per-file functions through `runner.run_files`, so a request
means and produces the same on either; dask is imported only when it is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job

from .runner import LocalExecutor, workers_option

EXECUTORS = ("local", "dask")
SCHEDULER_ENV = "DICOM_HUB_DASK_SCHEDULER"


def executor_name(job: Job) -> str:
    """The executor the request asks for; a scheduler without the dask executor is refused."""
    name = job.option("executor")
    if name not in EXECUTORS:
        raise HubError(ErrorCode.UNSUPPORTED_OPTION, f"executor {name!r} is not one this backend runs", f"use one of: {', '.join(EXECUTORS)}")
    if name != "dask" and job.option("scheduler"):
        raise HubError(ErrorCode.INVALID_REQUEST, "options.scheduler is only used by the dask executor", "add options.executor = 'dask', or remove options.scheduler")
    return name


def scheduler_address(job: Job) -> str | None:
    """The Dask scheduler to connect to: the option, else the environment, else None (start one)."""
    return job.option("scheduler") or os.environ.get(SCHEDULER_ENV) or None


@contextmanager
def executor_for(job: Job) -> Iterator[Any]:
    """The job's executor, open for the duration of the block."""
    if executor_name(job) == "dask":
        from .dask_executor import DaskExecutor, announce
        from .runner import show_progress

        address = scheduler_address(job)
        if address is not None and "workers" in job.options:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"options.workers cannot size the running Dask cluster at {address}",
                "remove options.workers (the cluster has its own workers), or unset the scheduler to start a local cluster of that size",
            )
        executor: DaskExecutor | LocalExecutor = DaskExecutor(address, job.option("workers"))
        announce(executor, show_progress(job))
    else:
        executor = LocalExecutor(workers_option(job))
    try:
        yield executor
    finally:
        executor.close()
