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
in the same order, with the folder listings (`list_folder`, which also sniffs the first bytes)
done by `list_folders`, e.g. as tasks on a Dask cluster, ahead of the walk; it holds the listings
of the folders on its path and of a bounded number listed ahead, never the archive's file list.
`Found(walk_tree(...))` is that stream as the batch ops take it (files, then `files_skipped`).
"""

from __future__ import annotations

import heapq
import itertools
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

    @property
    def files_skipped(self) -> int:
        return len(self.skipped)


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
    # Folders in sorted order, as `walk_tree` visits them: a folder reached twice (through a link)
    # is kept under the same path by both, whatever the order of `paths`.
    for path in sorted((Path(p) for p in paths), key=_sort_key):
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


def _name_sort_key(path: str) -> tuple[str, ...]:
    return Path(path).parts


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
        if suffix_of(path).lower() in DICOM_EXTENSIONS or is_dicom_candidate(Path(path), include_raw):
            listing.files.append(path)
        else:
            listing.skipped += 1
    return listing


def suffix_of(path: str) -> str:
    """`Path(path).suffix` without building the Path (a folder of thousands of `.dcm` files)."""
    name = os.path.basename(path)
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


class Found:
    """The files of a walk, streamed (iterate once), and how many it left out once it is done:
    what the batch ops run on, without holding the archive's file list."""

    def __init__(self, walk: Iterable[tuple[str | None, int]]) -> None:
        self._walk = walk
        self.files_skipped = 0

    def __iter__(self) -> Iterator[Path]:
        return map(Path, self.names())

    def names(self) -> Iterator[str]:
        """The files as strings (`str(path)` of what iterating gives), cheaper by the file."""
        for file, left_out in self._walk:
            self.files_skipped += left_out
            if file is not None:
                yield file


def walk_tree(
    list_folders: Callable[[list[str]], Iterable[FolderListing]],
    paths: Iterable[Path | str],
    recursive: bool = True,
    lookahead: int = 64,
) -> Iterator[tuple[str | None, int]]:
    """`scan`, streamed: `(file, 0)` for each DICOM candidate (the string of the path `scan`
    gives), in `scan`'s order, and `(None, n)` for n files left out.

    `list_folders(folders)` lists the given folders, results in order (e.g. a few Dask tasks, all
    in flight at once). The walk is depth first with each folder's files and subfolders merged by
    name, which is the sorted order of the paths; it asks for the next folder it needs together
    with up to `lookahead - 1` folders it will need after it, so the listings run ahead of the
    files it yields. It holds the listings of the folders open on its path and of those listed
    ahead: bounded by the tree's depth and `lookahead`, not by the number of files.
    """
    given = [Path(p) for p in paths]
    folders = sorted({p for p in given if p.is_dir()}, key=_sort_key)
    explicit = sorted({p for p in given if not p.is_dir() and p.exists()}, key=_sort_key)
    walk = _SortedWalk(list_folders, recursive, lookahead, explicit, [str(folder) for folder in folders])
    streams = [walk.files(root) for root in walk.roots]
    # Nested folders: recursively, a folder inside another is entered once, from the outer one,
    # which sorts first; not recursively, each is one listing, merged into the sorted order.
    found = itertools.chain(*streams) if recursive else heapq.merge(*streams, key=_name_sort_key)
    previous: str | None = None
    # (a merge with one stream left, as without named files, reads it on without the key)
    for file in heapq.merge([str(path) for path in explicit], found, key=_name_sort_key):
        if walk.skipped:
            yield None, walk.skipped
            walk.skipped = 0
        if file != previous:  # a file named explicitly and found in its folder too
            yield file, 0
        previous = file
    if walk.skipped:
        yield None, walk.skipped


class _SortedWalk:
    """The depth-first walk of `walk_tree`, with listings fetched ahead in batches. `roots`, the
    folders given, are walked in order (`files(root)` for each): those still to come are listed
    ahead too, so a request naming many folders does not cost a round trip each."""

    def __init__(
        self, list_folders: Callable[[list[str]], Iterable[FolderListing]], recursive: bool, lookahead: int, explicit: list[Path], roots: list[str]
    ) -> None:
        self.list_folders, self.recursive, self.lookahead = list_folders, recursive, max(1, lookahead)
        self.roots, self.next_root = roots, 0  # roots[next_root:] are not entered yet
        self.seen: set[tuple[int, int]] = set()
        self.listed: dict[str, FolderListing] = {}  # listed ahead, not entered yet
        self.skipped = 0
        self.explicit: dict[str, list[str]] = {}
        for path in explicit:
            self.explicit.setdefault(str(path.parent), []).append(str(path))

    def files(self, root: str) -> Iterator[str]:
        """The candidates under `root` (the root itself entered unless seen before); called for
        each of `roots` in turn."""
        path: list[_Open] = []  # the folders open on the way down, innermost last
        self.next_root += 1
        self._enter(root, path)
        while path:
            entry, is_folder = path[-1].next_entry()
            if entry is None:
                path.pop()
            elif is_folder:
                self._enter(entry, path)
            else:
                yield entry

    def _enter(self, folder: str, path: list[_Open]) -> None:
        listing = self._listing(folder, path)
        if listing.key is None or listing.key in self.seen:
            return  # cannot be listed, or entered already (a link loop, a second link)
        self.seen.add(listing.key)
        self.skipped += listing.skipped - self._named_and_left_out(folder, listing)
        path.append(_Open(listing.files, listing.subfolders if self.recursive else []))

    def _named_and_left_out(self, folder: str, listing: FolderListing) -> int:
        """Files of `folder` named in the request but not candidates: taken, so not skipped."""
        named = self.explicit.get(folder)
        if not named:
            return 0
        taken = set(listing.files)
        return sum(1 for path in named if path not in taken and os.path.isfile(path))

    def _listing(self, folder: str, path: list[_Open]) -> FolderListing:
        if folder not in self.listed:
            batch = [folder, *itertools.islice(self._upcoming(folder, path), self.lookahead - 1)]
            listings = list(self.list_folders(batch))
            assert len(listings) == len(batch)
            self.listed.update(zip(batch, listings, strict=True))
        return self.listed.pop(folder)

    def _upcoming(self, exclude: str, path: list[_Open]) -> Iterator[str]:
        """Folders not listed yet, in the order the walk will enter them: the rest of each open
        folder's subfolders, innermost first, then the roots still to come; below those already
        listed, their own."""
        for folder in reversed(path):
            yield from self._unlisted(folder.subfolders, folder.next_sub, exclude)
        yield from self._unlisted(self.roots, self.next_root, exclude)

    def _unlisted(self, subfolders: list[str], start: int, exclude: str) -> Iterator[str]:
        for i in range(start, len(subfolders)):
            sub = subfolders[i]
            listing = self.listed.get(sub)
            if listing is not None:
                if self.recursive and listing.key is not None and listing.key not in self.seen:
                    yield from self._unlisted(listing.subfolders, 0, exclude)
            elif sub != exclude:
                yield sub


class _Open:
    """A folder being walked: its files and subfolders, each sorted, merged by name."""

    __slots__ = ("files", "next_file", "next_sub", "subfolders")

    def __init__(self, files: list[str], subfolders: list[str]) -> None:
        self.files, self.subfolders = files, subfolders
        self.next_file = self.next_sub = 0

    def next_entry(self) -> tuple[str | None, bool]:
        file = self.files[self.next_file] if self.next_file < len(self.files) else None
        sub = self.subfolders[self.next_sub] if self.next_sub < len(self.subfolders) else None
        if sub is not None and (file is None or sub < file):
            self.next_sub += 1
            return sub, True
        if file is not None:
            self.next_file += 1
        return file, False
