"""Tables derived from data files, kept between runs in the user's cache folder.

Why: a `batch_anonymize` run starts by parsing PS3.15's table (`contract/data/*.tsv`, through
`csv`) and running pydicom's dictionary module (~5,000 entries) for the VRs it needs: ~10 ms of
every run's start, on the path before the workers fork. The same result read back with `marshal`
costs well under a millisecond. The knowledge stays in its one source file: an entry is only a
copy of what `build` made from its sources, named by the hash of everything it depends on (the
entry's name and format version, Python's version, each source's path, size and modification
time to the nanosecond: the check Python's own bytecode cache makes of its source, finer), so a
source that changes is parsed again; the stale entry is never read, and is removed when the new
one is written.

Entries live beside the compiled schema checks (`schema_check.py`), with the same rules: written
whole to a temporary file and renamed, carrying the hash of their bytes (an entry that does not
read back whole is built again), read only from a folder and a file of the user's own that nobody
else may write (marshal data is trusted input); a folder that cannot be written costs only the
build. A value must be what `marshal` keeps: None, bool, int, float, str, bytes, and tuples,
lists, dicts, sets and frozensets of them.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

CACHE_ENV = "DICOM_HUB_CACHE_DIR"  # the cache folder (compiled schema checks, derived tables)
_MAGIC = b"dicom-hub derived table 1\n"
_T = TypeVar("_T")


def derived(name: str, version: int, sources: Sequence[Path], build: Callable[[], _T]) -> _T:
    """`build()`, or the value it returned for these very sources in an earlier run. `name` says
    what is built (any text: one entry per name); `version` is raised whenever what `build` makes
    of the same sources changes (its code, its format)."""
    key = _key(name, version, sources)
    folder = None if key is None else cache_folder("derived")
    # The entries of one name and source files share a prefix (another checkout's are left alone).
    prefix = hashlib.sha256(repr([name, *map(os.fspath, sources)]).encode("utf-8", "backslashreplace")).hexdigest()[:12]
    path = None if folder is None else folder / f"{prefix}-{key}.bin"
    if path is not None:
        found = read_entry(path, _MAGIC)
        if isinstance(found, tuple) and len(found) == 1:
            return found[0]
    value = build()
    if path is not None:
        write_entry(path, _MAGIC, (value,))
        _remove_stale(path, prefix)
    return value


def _remove_stale(kept: Path, prefix: str) -> None:
    """The entries of the same name and source files made from other versions of them: never read
    again."""
    from contextlib import suppress

    with suppress(OSError):
        for stale in kept.parent.glob(f"{prefix}-*.bin"):
            if stale.name != kept.name:
                stale.unlink(missing_ok=True)


def _key(name: str, version: int, sources: Sequence[Path]) -> str | None:
    """The hash naming an entry; None when a source cannot be looked at (no entry then)."""
    parts: list[Any] = [name, version, sys.version]
    for source in sources:
        try:
            status = os.stat(source)
        except OSError:
            return None  # `build` reports the missing source in its own words
        parts.append((os.fspath(source), status.st_size, status.st_mtime_ns))
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()[:40]


def cache_folder(kind: str) -> Path | None:
    """`kind`'s folder in the cache (`CACHE_ENV`, else $XDG_CACHE_HOME/dicom-hub, else
    ~/.cache/dicom-hub; never the checkout); None when there is no home to find one in."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        if not os.path.isabs(base):  # no home (expanduser left "~"), or a relative XDG path: no cache
            return None
        folder = os.path.join(base, "dicom-hub")
    return Path(folder, kind)


def read_entry(path: Path, magic: bytes) -> Any | None:
    """The value kept at `path`; None when there is none, it is not whole, or someone else could
    have written it."""
    try:
        with open(path, "rb") as entry:
            if not (_own(os.fstat(entry.fileno())) and _own(os.stat(path.parent))):
                return None
            data = entry.read()
    except OSError:
        return None
    head = len(magic)
    payload = data[head + 32 :]
    if data[:head] != magic or data[head : head + 32] != hashlib.sha256(payload).digest():
        return None
    try:
        return marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None


def _own(status: os.stat_result) -> bool:
    """Owned by this user, and writable by no one else (where the system has POSIX owners)."""
    if not hasattr(os, "getuid"):
        return True  # Windows: the user's cache folder is private by its ACL
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def write_entry(path: Path, magic: bytes, value: Any) -> None:
    """Keep `value`: written whole to a temporary file, then renamed over `path`, so a concurrent
    reader sees the old entry, the new one or none. A failure costs only the cache."""
    import tempfile  # only on a cache miss
    from contextlib import suppress

    try:
        payload = marshal.dumps(value)
    except ValueError:  # not a value marshal keeps: a bug of the caller, but only the cache is lost
        return
    temp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as out:
            out.write(magic + hashlib.sha256(payload).digest() + payload)
        os.replace(temp, path)
    except OSError:
        if temp is not None:
            with suppress(OSError):
                os.unlink(temp)
