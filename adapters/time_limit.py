"""`options.timeout` for the in-process Python backend: the op runs in a worker process that is
killed when time is up, so the limit really stops the work (a thread cannot be stopped, and an
alarm signal cannot interrupt numpy or a codec).

The worker is the Python backend's own contract-native program (`python -m
dicom_hub.python_backend`), so its answer is checked like any other program's. Killed work can
leave temporary `.part` files, half-filled output folders or sidecars behind; what the worker
created is removed, so a timeout never leaves a partial output.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

WORKER = [sys.executable, "-m", "dicom_hub.python_backend"]


def run_with_time_limit(job: Job, seconds: float) -> Outcome:
    """Run `job` in a worker process; `timeout` (and nothing left behind) after `seconds`."""
    from dicom_hub.adapters.contract_cli import ContractCliAdapter, request_for

    worker = ContractCliAdapter("python", WORKER, "the time-limited python worker")
    request = request_for(job)
    request["options"].pop("timeout", None)  # the worker runs in-process; this process keeps time
    kind = load_catalog()[job.op].output
    before = output_snapshot(job.output, kind)
    try:
        # The worker runs in this folder: relative paths in options mean what the user meant.
        run = worker.run_cmd(worker.command(), timeout=seconds, stdin=json.dumps(request) + "\n", cwd=Path.cwd())
    except HubError as err:
        if err.code is not ErrorCode.TIMEOUT:
            raise
        remove_new_output(job.output, kind, before)
        raise HubError(
            ErrorCode.TIMEOUT,
            f"{job.op} did not finish within {seconds:g} s (options.timeout); the work was stopped and no output was kept",
            "raise options.timeout (the limit includes about 0.3 s to start the worker process)",
            stderr=err.stderr,
        ) from None
    return worker.interpret(job, run)


def output_snapshot(output: Path | None, kind: str) -> frozenset[Path] | None:
    """The paths that exist where the op may write: the output folder's tree, or the files beside
    an output file. None when the output folder does not exist yet (then all of it is new)."""
    if output is None:
        return frozenset()
    folder = output if kind == "directory" else output.parent
    if not folder.is_dir():
        return None
    return frozenset(_tree(folder) if kind == "directory" else folder.iterdir())


def remove_new_output(output: Path | None, kind: str, before: frozenset[Path] | None) -> None:
    """Delete what a killed worker created: for an output folder, every new path in it (the folder
    itself if it is new); for an output file, the file and its temporary files and sidecars."""
    if output is None:
        return
    if kind == "directory":
        if before is None:
            shutil.rmtree(output, ignore_errors=True)
            return
        for path in sorted(set(_tree(output)) - before, key=lambda p: len(p.parts)):
            _remove(path)
        return
    if not output.parent.is_dir():
        return
    stem = output.name.split(".")[0]
    for path in set(output.parent.iterdir()) - (before or frozenset()):  # a new parent: all of it is new
        if path.name.lstrip(".").startswith(stem):  # out.png, .out.png.x1y2.part, out.json sidecar
            _remove(path)


def _tree(folder: Path) -> Iterator[Path]:
    try:
        yield from folder.rglob("*")
    except OSError:
        return


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
