"""The contract's file rules, shared by every backend.

- `sample:<name>` inputs resolve to pydicom's bundled test files (no network access).
- Inputs must exist and be of the kind the op takes.
- An output is never an input, and an existing output is replaced only with `overwrite: true`.
- Inputs are regular files (or folders for the ops that take folders): a FIFO, device or socket
  would hang or never end a read, so it is refused before any backend starts.
- Outputs are regular files or new paths, compared with the inputs by their resolved paths.
- Outputs are written to a temporary file beside the target and renamed, so a failure never
  leaves a partial file behind. A failed write is `output_error` with the OS reason; the file
  gets the mode every other tool would give it (0666 minus the umask) unless it is private.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

from .errors import ErrorCode, HubError

SAMPLE_PREFIX = "sample:"
_SAMPLE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def sample_dir() -> Path:
    """pydicom's bundled test files (found without importing pydicom, which is slow)."""
    from importlib.util import find_spec

    spec = find_spec("pydicom")
    if spec is None or spec.origin is None:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, "pydicom is not installed", "pip install dicom-hub")
    return Path(spec.origin).parent / "data" / "test_files"


def sample_names() -> list[str]:
    return sorted(p.name for p in sample_dir().glob("*.dcm"))


def resolve_sample(name: str) -> Path:
    """`CT_small.dcm` -> the bundled file's path; names are plain file names only."""
    if not _SAMPLE_NAME.match(name) or name in (".", ".."):
        raise HubError(ErrorCode.INVALID_REQUEST, f"bad sample name {name!r}", "a sample is a plain file name such as sample:CT_small.dcm")
    path = sample_dir() / name
    if not path.is_file():
        raise HubError(
            ErrorCode.INPUT_NOT_FOUND,
            f"no bundled sample named {name!r}",
            "`dicom-hub samples` lists the bundled samples (e.g. sample:CT_small.dcm, sample:MR_small.dcm)",
        )
    return path


def resolve_input_path(text: str) -> Path:
    if text.startswith(SAMPLE_PREFIX):
        return resolve_sample(text[len(SAMPLE_PREFIX) :])
    return path_from_text(text, "input")


def path_from_text(text: str, what: str) -> Path:
    """An absolute path from request text; a NUL byte can be in no file name."""
    if "\x00" in text:
        raise HubError(ErrorCode.INVALID_REQUEST, f"{what} path holds a NUL character: {text!r}", "file names cannot contain NUL")
    return Path(text).expanduser().absolute()


def resolve_inputs(raw: str | list[str] | None, kind: str, op: str) -> tuple[Path, ...]:
    """Check the request's input against the op's input kind; return absolute paths."""
    given = [] if raw is None else [raw] if isinstance(raw, str) else list(raw)
    if kind == "none":
        if given:
            raise HubError(ErrorCode.INVALID_REQUEST, f"op {op!r} takes no input", "remove 'input' from the request")
        return ()
    if not given:
        raise HubError(ErrorCode.INVALID_REQUEST, f"op {op!r} needs an input ({kind})", "set 'input' to a path or sample:<name>")
    if kind in ("file", "directory") and len(given) > 1:
        raise HubError(ErrorCode.INVALID_REQUEST, f"op {op!r} takes one input {kind}, got {len(given)}", "pass a single path")
    paths = tuple(resolve_input_path(p) for p in given)
    for path in paths:
        if not path.exists():
            raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input not found: {path}", "check the path (relative paths are read from the current folder)")
        if kind in ("file", "files") and path.is_dir():
            raise HubError(ErrorCode.INVALID_REQUEST, f"input is a directory, op {op!r} takes a file: {path}", "pass a file, or use the batch_* ops for folders")
        if kind == "directory" and not path.is_dir():
            raise HubError(ErrorCode.INVALID_REQUEST, f"input is not a directory, op {op!r} takes a folder: {path}", "pass a folder")
        special = special_file_kind(path)
        if special:
            raise HubError(ErrorCode.INVALID_REQUEST, f"input is a {special}, not a regular file: {path}", "pass a regular file (copy the data to a file first)")
        if not os.access(path, os.R_OK):
            raise HubError(ErrorCode.INPUT_NOT_FOUND, f"input is not readable: {path}", "check the file permissions")
    return paths


def resolve_output(raw: str | None, kind: str, required: bool, op: str, inputs: tuple[Path, ...], overwrite: bool) -> Path | None:
    """Check the request's output: present when required, not an input, not clobbering a file."""
    if raw is None:
        if required:
            raise HubError(ErrorCode.INVALID_REQUEST, f"op {op!r} needs an output {kind}", "set 'output' in the request (or --output)")
        return None
    if kind == "none":
        raise HubError(ErrorCode.INVALID_REQUEST, f"op {op!r} writes no output", "remove 'output' from the request")
    path = path_from_text(raw, "output")
    real = path.resolve()  # `x/../in/out` and symlinked aliases name the same place
    for source in inputs:
        real_source = source.resolve()
        if real == real_source or (path.exists() and source.exists() and path.samefile(source)):
            raise HubError(ErrorCode.INVALID_REQUEST, f"output is the input: {path}", "write to another path; inputs are never overwritten")
        if kind == "directory" and source.is_dir() and real_source in real.parents:
            raise HubError(ErrorCode.INVALID_REQUEST, f"output folder {path} is inside the input folder {source}", "choose an output folder outside the input tree")
    if kind == "file":
        if path.is_dir():
            raise HubError(ErrorCode.INVALID_REQUEST, f"output is a directory, op {op!r} writes a file: {path}", "give a file path")
        _refuse_special_output(path)
        if path.exists() and not overwrite:
            raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "choose another path or set options.overwrite to true")
    elif kind == "directory" and path.exists() and not path.is_dir():
        raise HubError(ErrorCode.INVALID_REQUEST, f"output is a file, op {op!r} writes into a folder: {path}", "give a folder path")
    return path


def check_dicom_start(path: Path) -> None:
    """`not_dicom` for a file that cannot begin a DICOM file or raw data set, whatever backend
    reads it (tools disagree on such files: some answer ok with nothing in it).

    A Part 10 file has `DICM` at byte 128; a raw data set starts with an element of group 0002 or
    higher (group 0000 holds DIMSE commands, never stored data). So a file shorter than one element
    header, or starting in group 0000 whichever the byte order (a run of zero bytes), is not DICOM.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return  # the backend reports unreadable files with its own words
    if len(head) == 132 and head[128:] == b"DICM":
        return
    if len(head) < 8 or head[0:2] == b"\0\0":  # group 0000 in either byte order
        raise HubError(
            ErrorCode.NOT_DICOM,
            f"not a DICOM file: {path}",
            "the file has no DICM marker and does not start with a DICOM data element",
        )


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless asked (for files inside output folders)."""
    _refuse_special_output(path)
    if path.exists() and not overwrite:
        raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "choose another folder or set options.overwrite to true")


def special_file_kind(path: Path) -> str | None:
    """'FIFO', 'character device', ... for paths that are neither regular files nor folders."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))
    return next((name for test, name in kinds if test(mode)), None)


def _refuse_special_output(path: Path) -> None:
    """`overwrite` replaces files, never a device, FIFO or socket (e.g. /dev/null)."""
    special = special_file_kind(path)
    if special:
        raise HubError(ErrorCode.INVALID_REQUEST, f"output is a {special}, not a regular file: {path}", "write to a regular file or a new path")


# errno values that mean "the output cannot be written here" (not a bug, not a bad input).
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR})


def output_error(path: Path, err: OSError) -> HubError:
    """`output_error` for an OSError met while writing `path`, with the OS reason."""
    reason = err.strerror or str(err)
    return HubError(
        ErrorCode.OUTPUT_ERROR,
        f"cannot write {path}: {reason}",
        "choose an output folder that exists, is writable and has free space",
    )


def make_output_dir(folder: Path) -> None:
    """Create an output folder (and its parents); failures are `output_error` with the OS reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent (or the folder itself) is a file
        raise output_error(folder, OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))) from None
    except OSError as err:
        raise output_error(folder, err) from None


def new_file_mode(private: bool = False) -> int:
    """The mode a new output gets: 0666 minus the umask, like every other tool (0600 if private)."""
    return 0o600 if private else 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (threads may be writing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def disk_full(folder: Path) -> bool:
    """Whether the file system holding `folder` has no block or inode left (a tool that failed
    while writing there most likely failed for that reason)."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return fs.f_bfree == 0 or (os.geteuid() != 0 and fs.f_bavail == 0) or (fs.f_files > 0 and fs.f_ffree == 0)


@contextmanager
def atomic_output(path: Path, overwrite: bool = False, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Without `overwrite`, the final step uses a hard link, which fails rather than replace a file
    that appeared in the meantime. A write the file system refuses (read-only, full, no
    permission, a parent that is a file) is `output_error` with the OS reason, also when a
    tool writing the temporary file failed because the disk filled up. `private` keeps the
    file 0600 (keys, re-identification reports); else it gets 0666 minus the umask.
    """
    _refuse_special_output(path)  # also for paths no request check saw (options, folder contents)
    tmp = _temp_beside(path, private)
    try:
        try:
            yield tmp
        except OSError as err:
            if err.errno not in OUTPUT_ERRNOS:
                raise
            raise output_error(path, err) from None
        except HubError as err:
            if err.code is ErrorCode.OUTPUT_ERROR or not disk_full(tmp.parent):
                raise
            raise HubError(
                ErrorCode.OUTPUT_ERROR,
                f"cannot write {path}: {os.strerror(errno.ENOSPC)} ({err.message})",
                "free space on the output's file system, or write elsewhere",
                stdout=err.stdout,
                stderr=err.stderr,
                returncode=err.returncode,
            ) from None
        if not tmp.exists() or tmp.stat().st_size == 0 and not _allow_empty(path):
            raise HubError(ErrorCode.OUTPUT_ERROR, f"nothing was written for {path}", "see stderr for the backend's messages")
        move_into_place(tmp, path, overwrite)
    finally:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)


def _temp_beside(path: Path, private: bool) -> Path:
    """An empty temporary file in the output's folder, created with its final mode."""
    import tempfile  # here: it imports `random` and `shutil`, which start-up does not need

    make_output_dir(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as err:
        raise output_error(path, err) from None
    try:
        os.fchmod(fd, new_file_mode(private))
    finally:
        os.close(fd)
    return Path(tmp_name)


def move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give a finished temporary file its final name: a rename with `overwrite`, else a hard link
    that fails (`output_exists`) rather than replace a file that appeared meanwhile; what the file
    system refuses is `output_error`."""
    try:
        _move_into_place(tmp, path, overwrite)
    except OSError as err:
        raise output_error(path, err) from None


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true") from None
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise
        # Filesystems without hard links: fall back to a checked rename.
        if path.exists():
            raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true") from None
        os.replace(tmp, path)


def _allow_empty(path: Path) -> bool:
    return path.suffix in (".txt", ".csv", ".json")


def write_file_atomically(path: Path, data: bytes | Sequence[Any], overwrite: bool = False) -> None:
    """`atomic_output` for bytes already in memory (one buffer, or pieces written in order), in
    a third of its system calls (batch outputs, thousands a run), with the same errors and codes.

    Without `overwrite`, where Linux allows: the bytes go to an unnamed file in `path`'s folder
    (O_TMPFILE, mode 0666 less the umask, as `new_file_mode`), which is then linked as `path`
    (linkat, which fails rather than replace anything there): the name appears only with every
    byte behind it, and a process killed mid-write leaves nothing at all. Otherwise, a temporary
    `.<name>.<random>.part` beside `path` is created with O_EXCL, written, closed and renamed
    into place (RENAME_NOREPLACE where the system has it, else a hard link as `atomic_output`
    does; `os.replace` with `overwrite`)."""
    pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else list(data)
    if not overwrite and _write_unnamed(path, pieces):
        return
    if overwrite:  # else a path that exists, whatever it is, fails the rename (and is looked at then)
        _refuse_special_output(path)
    import secrets  # here: only this fallback names a temporary file (start-up does without it)

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    moved = False
    try:
        try:
            fd = _create_new(tmp)
        except OSError as err:
            raise output_error(path, err) from None
        try:
            _write_output(fd, pieces, path)
        finally:
            os.close(fd)
        _refuse_empty(pieces, path)
        try:
            moved = not overwrite and _rename_no_replace(tmp, path)
            if not moved:
                _move_into_place(tmp, path, overwrite)
                moved = overwrite  # a hard link leaves the temporary name to remove
        except HubError as err:
            if err.code is ErrorCode.OUTPUT_EXISTS:
                _refuse_special_output(path)  # a device or FIFO is refused as such
            raise
        except OSError as err:
            raise output_error(path, err) from None
    finally:
        if not moved:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)


def _write_unnamed(path: Path, pieces: list[Any]) -> bool:
    """`write_file_atomically` through an unnamed file linked as `path`; False (nothing written,
    nothing left) where the system cannot (no O_TMPFILE on this file system, no /proc) or the
    link failed for another reason than an existing `path`."""
    global _unnamed_files
    if not _unnamed_files:
        return False
    _refuse_empty(pieces, path)
    folder = os.path.dirname(path)  # (a string: cheaper than a Path, file after file)
    try:
        fd = _open_unnamed(folder)
    except OSError as err:
        if err.errno in _NO_UNNAMED_FILES:
            return False
        raise output_error(path, err) from None
    try:
        _write_output(fd, pieces, path)
        try:
            # /proc/self/fd/N names the unnamed file; `src_dir_fd` (ignored for an absolute path)
            # makes Python call linkat, which can follow that link, rather than link, which cannot.
            os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd, follow_symlinks=True)
        except FileExistsError:
            _refuse_special_output(path)  # a device or FIFO is refused as such
            raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true") from None
        except OSError as err:
            if err.errno in _NO_LINK_FROM_PROC or (err.errno == errno.ENOENT and os.path.isdir(folder)):
                _unnamed_files = False  # no /proc (a bare container), or a kernel that will not link it
            # The named temporary file's way: it reports a real failure (no space, a folder gone,
            # a read-only file system) as `output_error`, with the OS reason.
            return False
    finally:
        os.close(fd)
    return True


def _open_unnamed(folder: str) -> int:
    flags = os.O_WRONLY | os.O_TMPFILE | os.O_CLOEXEC
    try:
        return os.open(folder, flags, 0o666)
    except FileNotFoundError:  # the folder is not there yet
        make_output_dir(Path(folder))
        return os.open(folder, flags, 0o666)


_unnamed_files = hasattr(os, "O_TMPFILE")  # off for the process once /proc turns out missing
# O_TMPFILE refused: a file system without it (EOPNOTSUPP), a kernel without it (EISDIR, EINVAL).
_NO_UNNAMED_FILES = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
# linkat of /proc/self/fd/N refused by the system, whatever the output.
_NO_LINK_FROM_PROC = frozenset({errno.EPERM, errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP})

_AT_FDCWD, _RENAME_NOREPLACE = -100, 1


def prepare_atomic_writes(overwrite: bool = False) -> None:
    """Load what `write_file_atomically` needs now (the C library's renameat2, through ctypes,
    ~3 ms, where no unnamed file can be written and no output is replaced): before batch workers
    fork, so they share it instead of each loading it."""
    if not overwrite and not _unnamed_files:
        _renameat2()


@cache
def _renameat2() -> Any:
    """The C library's renameat2, or None (not Linux, an old C library)."""
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (ImportError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _rename_no_replace(tmp: Path, path: Path) -> bool:
    """Rename `tmp` to `path` unless `path` exists: one directory operation where a hard link and
    an unlink take two. False when the system cannot (the caller then links)."""
    function = _renameat2()
    if function is None:
        return False
    import ctypes

    if function(_AT_FDCWD, os.fsencode(tmp), _AT_FDCWD, os.fsencode(path), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true")
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without the flag
        return False
    raise OSError(err, os.strerror(err), str(path))


def _refuse_empty(pieces: list[Any], path: Path) -> None:
    if not any(len(piece) for piece in pieces) and not _allow_empty(path):
        raise HubError(ErrorCode.OUTPUT_ERROR, f"nothing was written for {path}", "see stderr for the backend's messages")


def _write_output(fd: int, pieces: list[Any], path: Path) -> None:
    """`_write_all`; a write the file system refuses (full, read-only) is `output_error` for `path`."""
    try:
        _write_all(fd, pieces)
    except OSError as err:
        if err.errno not in OUTPUT_ERRNOS:
            raise
        raise output_error(path, err) from None


def _write_all(fd: int, pieces: list[Any]) -> None:
    """Every byte of `pieces`, in order, with as few system calls as the kernel allows."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


_IOV_MAX = 1024  # Linux's limit on buffers per writev


def _create_new(tmp: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(tmp, flags, 0o666)
    except FileNotFoundError:  # the folder is not there yet
        make_output_dir(tmp.parent)
        return os.open(tmp, flags, 0o666)
