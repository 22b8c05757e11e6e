"""Finding the DICOM files in a folder tree, cheaply.

API
---
`find_dicom_files(paths, recursive=True, include_raw=False) -> list[Path]`
    The DICOM files under `paths` (folders and/or files), deduplicated, in sorted order.
`scan(paths, recursive=True, include_raw=False) -> Discovery`
    The same plus the files that were looked at and left out (`Discovery.skipped`), which the batch
    ops report as `files_skipped`.

What counts as a DICOM file (decided from the name and at most the first 132 bytes):
- a name ending in `.dcm`, `.dicom` or `.ima` (any case) — taken without reading it, so a text file
  named `x.dcm` is taken and then fails in the op with `not_dicom`, where the user sees it;
- a name without an extension, or with an all-digit one (archives name files by UID, e.g.
  `1.2.840.113619.2.1.320`), whose bytes 128-131 are `DICM`;
- with `include_raw`, such a name whose first bytes look like a raw data set without preamble
  (group 0x0008 or 0x0002 first, a known explicit VR or a plausible implicit length);
- a file named explicitly in `paths`, always (the user asked for it).

Symlinks are followed, but every directory is entered once (by device and inode), so a link
loop or a second link to the same folder cannot repeat files.

For archives too big for one list, `walk_tree(list_folders, paths, ...)` streams the same files
folder by folder (each folder's files, sorted, then its subfolders, depth first), with the
folder listings (`list_folder`, which also sniffs the first bytes) done by `list_folders`, e.g.
as tasks on a Dask cluster; the client holds only the folders still to visit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".ima"})
MAGIC_OFFSET = 128
MAGIC = b"DICM"
_EXPLICIT_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)


@dataclass
class Discovery:
    """The result of a scan: files to process, and files looked at and left out."""

    files: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    skipped_count: int | None = None  # when only the number is known (a distributed walk)

    @property
    def files_skipped(self) -> int:
        return len(self.skipped) if self.skipped_count is None else self.skipped_count


def find_dicom_files(paths: Iterable[Path | str] | Path | str, recursive: bool = True, include_raw: bool = False) -> list[Path]:
    """The DICOM files under `paths`, sorted, each once (see the module docstring for the rules)."""
    return scan(paths, recursive=recursive, include_raw=include_raw).files


def scan(paths: Iterable[Path | str] | Path | str, recursive: bool = True, include_raw: bool = False) -> Discovery:
    """Walk `paths` and sort every regular file into taken or skipped."""
    if isinstance(paths, str | Path):
        paths = [paths]
    taken: set[Path] = set()
    skipped: set[Path] = set()
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path, recursive, seen_dirs):
                (taken if is_dicom_candidate(file, include_raw) else skipped).add(file)
        elif path.exists():
            taken.add(path)
    return Discovery(sorted(taken, key=_sort_key), sorted(skipped - taken, key=_sort_key))


def is_dicom_candidate(path: Path, include_raw: bool = False) -> bool:
    """Decide from the name, else from the first bytes, whether `path` is worth opening as DICOM."""
    suffix = path.suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return True
    if suffix and not suffix[1:].isdigit():
        return False
    head = _head(path)
    if head is None:
        return False
    if head[MAGIC_OFFSET : MAGIC_OFFSET + 4] == MAGIC:
        return True
    return include_raw and looks_like_raw_dataset(head, path)


def looks_like_raw_dataset(head: bytes, path: Path | None = None) -> bool:
    """A data set without preamble starts with a little-endian tag in group 0x0002 or 0x0008."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    element = int.from_bytes(head[2:4], "little")
    if group not in (0x0002, 0x0008) or element % 2:
        return False
    if head[4:6] in _EXPLICIT_VRS:
        return True
    length = int.from_bytes(head[4:8], "little")
    size = path.stat().st_size if path is not None else len(head)
    return length < max(size, 8)


def _head(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read(MAGIC_OFFSET + 4)
    except OSError:
        return None


def _walk(root: Path, recursive: bool, seen_dirs: set[tuple[int, int]]) -> Iterable[Path]:
    """Regular files under `root`; each directory (by device and inode) is entered once."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            files, subdirs = _entries(str(folder))
        except OSError:
            continue
        yield from map(Path, files)
        if recursive:
            stack.extend(reversed([Path(d) for d in subdirs]))


def _entries(folder: str) -> tuple[list[str], list[str]]:
    """The regular files and the subfolders of `folder`, by name, links followed (a dangling one is
    neither); OSError when the folder cannot be listed."""
    files: list[str] = []
    subfolders: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        try:
            mode = entry.stat(follow_symlinks=True).st_mode
        except OSError:
            continue  # a dangling symlink
        if stat.S_ISDIR(mode):
            subfolders.append(entry.path)
        elif stat.S_ISREG(mode):
            files.append(entry.path)
    return files, subfolders


def _sort_key(path: Path) -> tuple[str, ...]:
    return path.parts


@dataclass
class FolderListing:
    """One folder's DICOM candidates (sorted), how many files it left out, and its subfolders."""

    key: tuple[int, int] | None
    files: list[str] = field(default_factory=list)
    skipped: int = 0
    subfolders: list[str] = field(default_factory=list)


def list_folder(folder: str, include_raw: bool = False) -> FolderListing:
    """Sort the regular files of one folder into taken and skipped (the unit of a walk task)."""
    try:
        st = os.stat(folder)
        files, subfolders = _entries(folder)
    except OSError:
        return FolderListing(None)
    listing = FolderListing((st.st_dev, st.st_ino), subfolders=subfolders)
    for path in files:
        if is_dicom_candidate(Path(path), include_raw):
            listing.files.append(path)
        else:
            listing.skipped += 1
    return listing


def scan_with(
    list_folders: Callable[[Iterable[str]], Iterator[FolderListing]], paths: Iterable[Path | str], recursive: bool = True, lookahead: int = 64
) -> Discovery:
    """`scan` with the folder listings done by `list_folders` (e.g. Dask tasks); same files,
    same order."""
    files: set[Path] = set()
    skipped = 0
    for file, left_out in walk_tree(list_folders, paths, recursive, lookahead):
        skipped += left_out
        if file is not None:
            files.add(file)
    return Discovery(sorted(files, key=_sort_key), skipped_count=skipped)


def walk_tree(
    list_folders: Callable[[Iterable[str]], Iterator[FolderListing]],
    paths: Iterable[Path | str],
    recursive: bool = True,
    lookahead: int = 64,
) -> Iterator[tuple[Path | None, int]]:
    """`(file, 0)` for each DICOM candidate and `(None, n)` for n files left out, streamed.

    `list_folders(folders)` lists the given folders, results in order (e.g. one task each, all
    in flight at once). The walk hands it up to `lookahead` folders of its depth-first frontier
    at a time, so the order is fixed for a given tree.
    """
    explicit = [Path(p) for p in paths if not Path(p).is_dir() and Path(p).exists()]
    for file in explicit:
        yield file, 0
    given = set(explicit)
    frontier: list[str] = [str(p) for p in reversed([Path(p) for p in paths]) if Path(p).is_dir()]
    seen: set[tuple[int, int]] = set()
    while frontier:
        # List the next folders of the depth-first order together; their subfolders go first.
        batch = [frontier.pop() for _ in range(min(lookahead, len(frontier)))]
        listings = list(list_folders(batch))
        assert len(listings) == len(batch)
        unvisited: list[str] = []
        for listing in listings:
            if listing.key is None or listing.key in seen:
                continue
            seen.add(listing.key)
            for name in listing.files:
                if Path(name) not in given:
                    yield Path(name), 0
            if listing.skipped:
                yield None, listing.skipped
            if recursive:
                unvisited.extend(listing.subfolders)
        frontier.extend(reversed(unvisited))
