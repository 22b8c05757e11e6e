"""The saved progress of an `extract_metadata` run, kept next to its output so a run stopped by
Ctrl-C or `kill -9` continues where it stopped.

Layout of `<output folder>/.<output name>.state/`:
- `lock`: held (flock) for the whole run, so two runs cannot write the same state; the kernel
  releases it when a process dies, even by `kill -9`;
- `run.json`: what the run is (inputs and options that change the rows) and the frozen file list;
- `chunk-NNNNNN.jsonl`: the rows of files `[N*size, (N+1)*size)` of that list, in order, first
  line a header with the chunk's errors and columns. A chunk is written to a temp file and renamed, so it
  exists completely or not at all: a resumed run redoes only missing chunks, which gives no
  duplicate and no lost rows.
The state folder is removed once the table has been written.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError

STATE_VERSION = 1


class RunState:
    """One extraction's state folder; use as a context manager (it takes the lock)."""

    def __init__(self, output: Path) -> None:
        self.folder = output.parent / f".{output.name}.state"
        self._lock_fd: int | None = None

    def __enter__(self) -> RunState:
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot create the run state in {self.folder}: {err.strerror}", "check that the output folder is writable") from None
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise HubError(
                ErrorCode.OUTPUT_ERROR,
                f"another extract_metadata run is writing {self.folder.name} right now",
                "wait for it to finish, or write to another output file",
            ) from None
        for stale in self.folder.glob(".*.tmp"):  # half-written by a run that was killed
            stale.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- the run description ----------------------------------------------------------------

    def load(self, signature: dict[str, Any]) -> dict[str, Any] | None:
        """The saved run when it matches `signature`; None when there is none."""
        path = self.folder / "run.json"
        if not path.exists():
            return None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable: start over
        if saved.get("version") != STATE_VERSION or saved.get("signature") != signature:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"{self.folder} holds an interrupted run with other inputs or options",
                "rerun with the same arguments to resume it, or set options.resume to false to start over",
            )
        return saved

    def start(self, signature: dict[str, Any], files: list[str], skipped: int) -> dict[str, Any]:
        """Forget any previous progress and save a new run description."""
        for old in self.folder.glob("chunk-*"):
            old.unlink()
        run = {"version": STATE_VERSION, "signature": signature, "files": files, "skipped": skipped}
        self._write(self.folder / "run.json", json.dumps(run))
        return run

    # -- chunks -------------------------------------------------------------------------------

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.jsonl"

    def has_chunk(self, index: int) -> bool:
        return self.chunk_path(index).exists()

    def save_chunk(self, index: int, rows: list[dict[str, str]], errors: list[dict[str, str]]) -> None:
        """Rows as JSON lists under the chunk's own column list (a header line), so reading them
        back needs no per-row keys, and the table's columns come from the headers alone."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        used = sorted({key for row in rows for key, value in row.items() if value != ""})
        header = {"errors": errors, "rows": len(rows), "columns": columns, "used": used}
        lines = [json.dumps(header, ensure_ascii=False)]
        lines.extend(json.dumps([row.get(c) for c in columns], ensure_ascii=False) for row in rows)
        self._write(self.chunk_path(index), "\n".join(lines) + "\n")

    def chunk_header(self, index: int) -> dict[str, Any]:
        with open(self.chunk_path(index), encoding="utf-8") as f:
            return json.loads(f.readline())

    def chunk_rows(self, index: int) -> Iterator[list[str | None]]:
        """The chunk's rows, one at a time, as lists in the order of its header's `columns`."""
        with open(self.chunk_path(index), encoding="utf-8") as f:
            f.readline()
            for line in f:
                yield json.loads(line)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
