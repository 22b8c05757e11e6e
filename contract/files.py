"""The contract's file rules, shared by every backend.

- `sample:<name>` inputs resolve to pydicom's bundled test files (no network access).
- Inputs must exist and be of the kind the op takes.
- An output is never an input, and an existing output is replaced only with `overwrite: true`.
- Outputs are written to a temporary file beside the target and renamed, so a failure never
  leaves a partial file behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    path = Path(raw).expanduser().absolute()
    for source in inputs:
        if path == source or (path.exists() and source.exists() and path.samefile(source)):
            raise HubError(ErrorCode.INVALID_REQUEST, f"output is the input: {path}", "write to another path; inputs are never overwritten")
        if kind == "directory" and source.is_dir() and (path == source or source in path.parents):
            raise HubError(ErrorCode.INVALID_REQUEST, f"output folder {path} is inside the input folder {source}", "choose an output folder outside the input tree")
    if kind == "file":
        if path.is_dir():
            raise HubError(ErrorCode.INVALID_REQUEST, f"output is a directory, op {op!r} writes a file: {path}", "give a file path")
        if path.exists() and not overwrite:
            raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "choose another path or set options.overwrite to true")
    elif kind == "directory" and path.exists() and not path.is_dir():
        raise HubError(ErrorCode.INVALID_REQUEST, f"output is a file, op {op!r} writes into a folder: {path}", "give a folder path")
    return path


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing file unless asked (for files inside output folders)."""
    if path.exists() and not overwrite:
        raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "choose another folder or set options.overwrite to true")


@contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Without `overwrite`, the final step uses a hard link, which fails rather than replace a file
    that appeared in the meantime.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0 and not _allow_empty(path):
            raise HubError(ErrorCode.OUTPUT_ERROR, f"nothing was written for {path}", "see stderr for the backend's messages")
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true") from None
            except OSError:
                # Filesystems without hard links: fall back to a checked rename.
                if path.exists():
                    raise HubError(ErrorCode.OUTPUT_EXISTS, f"output exists: {path}", "set options.overwrite to true") from None
                os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _allow_empty(path: Path) -> bool:
    return path.suffix in (".txt", ".csv", ".json")
