"""The saved progress of a batch run, kept next to its output so a run stopped by Ctrl-C or
`kill -9` continues where it stopped.

Layout of `<output folder>/.<output name>.state/` (created 0700; refused when it is a symlink,
not a folder, or owned by another user, so a planted link cannot redirect our writes):
- `lock`: held (flock) for the whole run, so two runs cannot write the same state; the kernel
  releases it when a process dies, even by `kill -9`;
- `run.json`: what the run is (inputs and options that change the output) and, for
  `extract_metadata`, the frozen file list;
- `chunk-NNNNNN.jsonl` (`extract_metadata`): the rows of files `[N*size, (N+1)*size)` of that
  list, in order, first line a header with the chunk's errors and columns. A chunk is written to
  a temp file and renamed, so it exists completely or not at all: a resumed run redoes only
  missing chunks, which gives no duplicate and no lost rows;
- `part-NNNNNN-XXXXXXXX.csv` (`extract_metadata` to CSV): chunk N's rows already formatted as
  CSV lines by the task that saved it, written before the chunk, which names it in its header
  (`csv`) with a digest of the columns, the escaping and the run it was formatted for, and its
  size; the random suffix ties a part to the chunk that names it, so a part of a repeated task
  is never taken for another's, and only the run that made a part uses it (a resumed run
  formats the reused chunks again).
  `csv-hint.json` says which columns the tasks format with (`extract.CsvParts`);
- `done.jsonl` (ops writing a folder): one line per finished output, `{"t": target, "v": value}`,
  appended as files finish; a resumed run skips those outputs (a torn last line is ignored).
The state folder is removed once the run has finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from dicom_hub.contract.errors import ErrorCode, HubError

from .flatten import INCOMPLETE_COLUMN, PATH_COLUMN

STATE_VERSION = 1
_to_json = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False), one encoder


LOCK_WAIT_S = 2.0  # how long a new run waits for the lock of a run that is ending


class RunState:
    """One run's state folder; use as a context manager (it takes the lock)."""

    # Lock descriptors of the runs this process holds. A forked worker inherits copies, and a flock
    # lives as long as any copy: workers close theirs (`close_inherited_locks`), so the lock goes
    # with the process that took it, even while a worker of a killed run is still dying.
    held: set[int] = set()

    def __init__(self, output: Path, op: str = "extract_metadata") -> None:
        self.folder = output.parent / f".{output.name}.state"
        self.op = op
        self._lock_fd: int | None = None

    @classmethod
    def at(cls, folder: Path) -> RunState:
        """The state folder of a run held by another process (a Dask task writing one chunk)."""
        state = cls.__new__(cls)
        state.folder, state.op, state._lock_fd = folder, "extract_metadata", None
        return state

    def __enter__(self) -> RunState:
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            _claim_folder(self.folder)
            self._lock_fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except HubError:
            raise
        except OSError as err:
            raise HubError(ErrorCode.OUTPUT_ERROR, f"cannot create the run state in {self.folder}: {err.strerror}", "check that the output folder is writable") from None
        if not _flock_within(self._lock_fd, LOCK_WAIT_S):
            os.close(self._lock_fd)
            self._lock_fd = None
            raise HubError(
                ErrorCode.OUTPUT_ERROR,
                f"another {self.op} run is writing {self.folder.name} right now",
                "wait for it to finish, or write to another output file",
            ) from None
        RunState.held.add(self._lock_fd)
        for entry in os.scandir(self.folder):
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):  # half-written by a run that was killed
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd is not None:
            RunState.held.discard(self._lock_fd)
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

    def load_run(self) -> dict[str, Any] | None:
        """The saved run description, whatever it is (None when missing or unreadable)."""
        try:
            saved = json.loads((self.folder / "run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) and saved.get("version") == STATE_VERSION else None

    def save_run(self, run: dict[str, Any], durable: bool = True) -> None:
        """`durable`: synced to disk before it is renamed into place; a batch's run description
        needs no sync (its journal and outputs are not synced either, and an unreadable description
        only starts the run over)."""
        self._write(self.folder / "run.json", json.dumps({"version": STATE_VERSION, **run}), durable)

    def start(self, signature: dict[str, Any], files: list[str], skipped: int, **extra: Any) -> dict[str, Any]:
        """Forget any previous progress and save a new run description (`extra`: more entries)."""
        for old in [*self.folder.glob("chunk-*"), *self.folder.glob("part-*")]:
            old.unlink()
        run = {"version": STATE_VERSION, "signature": signature, "files": files, "skipped": skipped, **extra}
        self._write(self.folder / "run.json", json.dumps(run))
        return run

    # -- chunks -------------------------------------------------------------------------------

    def chunk_path(self, index: int) -> Path:
        return self.folder / f"chunk-{index:06d}.jsonl"

    def has_chunk(self, index: int) -> bool:
        return self.chunk_path(index).exists()

    def save_chunk(self, index: int, rows: Iterable[dict[str, str]] | ChunkRows, errors: list[dict[str, str]], **extra: Any) -> None:
        """Rows as JSON lists under the chunk's own column list (a header line), so reading them
        back needs no per-row keys, and the table's columns come from the headers alone. `extra`:
        more header entries."""
        chunk = rows if isinstance(rows, ChunkRows) else ChunkRows(rows)
        header = {"errors": errors, "warnings": chunk.warnings, "rows": len(chunk.lines), "columns": list(chunk.columns), "used": chunk.used(), **extra}
        self._write(self.chunk_path(index), [_to_json(header), *chunk.lines])

    def chunk_header(self, index: int) -> dict[str, Any]:
        with open(self.chunk_path(index), encoding="utf-8") as f:
            return json.loads(f.readline())

    def chunk_rows(self, index: int) -> Iterator[list[str | None]]:
        """The chunk's rows, one at a time, as lists in the order of its header's `columns` (a row
        saved before a column first appeared is shorter: the missing end is None)."""
        with open(self.chunk_path(index), encoding="utf-8") as f:
            width = len(json.loads(f.readline())["columns"])
            yield from _full_width(f, width)

    def save_part(self, index: int, write: Callable[[TextIO], None]) -> str:
        """A new CSV part of chunk `index`, its text written by `write(file)`; return its name,
        unique to this call. Not synced: only the run that made it uses it (a crash ends that run)."""
        import secrets

        name = f"part-{index:06d}-{secrets.token_hex(4)}.csv"
        self._write(self.folder / name, write, durable=False)
        return name

    @property
    def csv_hint_path(self) -> Path:
        return self.folder / "csv-hint.json"

    def csv_hint(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.csv_hint_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save_csv_hint(self, hint: dict[str, Any] | None) -> None:
        """The hint tasks read (`csv_hint`); None removes it."""
        if hint is None:
            self.csv_hint_path.unlink(missing_ok=True)
        else:
            self._write(self.csv_hint_path, json.dumps(hint), durable=False)

    # -- the journal of finished outputs (ops writing a folder) ----------------------------------

    @property
    def journal_path(self) -> Path:
        return self.folder / "done.jsonl"

    def read_journal(self) -> dict[str, Any]:
        """Finished targets and their per-file values; a line cut short by a kill is ignored."""
        done: dict[str, Any] = {}
        try:
            with open(self.journal_path, encoding="utf-8") as f:
                for line in f:
                    if not line.endswith("\n"):
                        break
                    try:
                        entry = json.loads(line)
                        done[entry["t"]] = entry.get("v")
                    except (ValueError, KeyError, TypeError):
                        continue
        except FileNotFoundError:
            pass
        return done

    def forget_journal(self) -> None:
        self.journal_path.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self, path: Path, text: str | list[str] | Callable[[TextIO], None], durable: bool = True) -> None:
        """`text`, or lines (each written with its newline, never all joined), or what
        `text(file)` writes, into `path`: a temp file, fsync (when `durable`), rename."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", newline="" if callable(text) else None, encoding="utf-8") as f:
            if callable(text):
                text(f)
            elif isinstance(text, str):
                f.write(text)
            else:
                for line in text:
                    f.write(line)
                    f.write("\n")
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)


class ChunkRows:
    """A chunk's rows as they come, each kept as its JSON line (a row's text, not its dict, so a
    worker's memory does not grow with the chunk): the values in the order in which the chunk's
    columns first appeared, up to the last column known when the row came."""

    def __init__(self, rows: Iterable[dict[str, str]] = ()) -> None:
        self.columns: dict[str, int] = {}  # name -> position, in order of first appearance
        self.lines: list[str] = []
        self.warnings: list[dict[str, str]] = []
        self._used: set[str] = set()
        self._unused: dict[str, int] = {}  # columns empty in every row so far
        for row in rows:
            self.add(row)

    def add(self, row: dict[str, str]) -> None:
        columns = self.columns
        if not row.keys() <= columns.keys():
            for name in row:
                if name not in columns:
                    columns[name] = len(columns)
                    self._unused[name] = columns[name]
        values = list(map(row.get, columns))
        if self._unused:  # most columns have a value in the first row: only the rest are checked
            for name in [name for name, i in self._unused.items() if values[i]]:
                del self._unused[name]
                self._used.add(name)
        if INCOMPLETE_COLUMN in row:
            self.warnings.append(incomplete_warning(row))
        self.lines.append(_to_json(values))

    def used(self) -> list[str]:
        """The columns with a non-empty value in some row, sorted."""
        return sorted(self._used)

    def values(self) -> Iterator[list[str | None]]:
        """The rows as `RunState.chunk_rows` reads them back, from memory."""
        return _full_width(self.lines, len(self.columns))


def _full_width(lines: Iterable[str], width: int) -> Iterator[list[str | None]]:
    """Saved rows as lists of `width` values (a row saved before a column first appeared is
    shorter: its missing end is None)."""
    for line in lines:
        values = json.loads(line)
        if len(values) < width:
            values.extend([None] * (width - len(values)))
        yield values


def _claim_folder(folder: Path) -> None:
    """Create the state folder, or accept an existing one only if it is a real folder of ours."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    st = os.lstat(folder)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder" if not stat.S_ISDIR(st.st_mode) else "owned by another user"
        raise HubError(
            ErrorCode.OUTPUT_ERROR,
            f"the run state {folder} is {what}; refusing to write through it",
            "remove it (it is not one dicom-hub made), or write to another output",
        )


def remove_own_temporaries(folder: Path, names: Iterable[str]) -> int:
    """Delete the temp files a killed run left for the outputs `names` in `folder`.

    `contract.files.atomic_output` writes `.<name>.<random>.part`; a run checking an existing
    output writes `.<name>.<random>.verify<ext>` (and that file's own temp). Only files built on a
    name of this run's outputs are touched, and only while the run holds the state lock.
    """
    wanted = set(names)
    if not wanted:
        return 0
    removed = 0
    for name, paths in temporaries_by_name(folder).items():
        if name in wanted:
            for path in paths:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    removed += 1
    return removed


def temporaries_by_name(folder: Path) -> dict[str, list[str]]:
    """Our temp files in `folder` (see `remove_own_temporaries`), by the output name they are for;
    usually empty: only a killed run or a dead worker leaves any."""
    found: dict[str, list[str]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return found
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_file(follow_symlinks=False):
            found.setdefault(match.group(1), []).append(entry.path)
    return found


# `.name.XXXX.part`, `.name.XXXX.verify.ext`, `..name.XXXX.verify.ext.YYYY.part`
_TEMPORARY = re.compile(r"^\.\.?(.+?)\.[A-Za-z0-9_]{6,32}\.(?:part|verify[^/]*)$")


def incomplete_warning(row: dict[str, str]) -> dict[str, str]:
    """The `warnings` record of a row whose file was cut short: it is in the table, but partial."""
    return {
        "path": row[PATH_COLUMN],
        "code": "decode_error",
        "message": f"the header is cut short ({row[INCOMPLETE_COLUMN]}): the row holds only the elements before the cut",
    }


def close_inherited_locks() -> None:
    """In a forked worker: close the copies of the parent's run-lock descriptors (see `RunState.held`)."""
    for fd in RunState.held:
        with contextlib.suppress(OSError):
            os.close(fd)
    RunState.held = set()


def _flock_within(fd: int, seconds: float) -> bool:
    """Take the exclusive lock, waiting up to `seconds` for a run that is just ending (a killed
    run's dying worker may hold a copy for a moment) before saying another run holds it."""
    import fcntl
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
