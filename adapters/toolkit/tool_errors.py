"""Turning a C++ toolkit's failed run into a contract error code.

DCMTK and GDCM exit with 1 (or a tool-specific number) for every kind of failure, so the
code comes from what they print: a read failure is `not_dicom` when the file has no DICOM
marker and `decode_error` when it has one; a refused codec is `codec_unavailable`.
"""

from __future__ import annotations

import re
from pathlib import Path

from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
from dicom_hub.adapters.toolkit.syntaxes import read_failure_code
from dicom_hub.contract.errors import ErrorCode, HubError

_NOT_FOUND = re.compile(r"No such file or directory|does not exist|file not found", re.I)
_READ = re.compile(
    r"I/O suspension|premature end|Invalid stream|not a valid DICOM|not a DICOM|Failed to read|Could not read|"
    r"larger \(\d+\) than remaining|Unknown Tag & Data|Corrupted data|parse error|Not a DICOM|Delimitation Item missing",
    re.I,
)
_CHARSET = re.compile(r"character set conversion|Cannot open character encoding", re.I)
_CODEC = re.compile(
    r"not supported|no conversion|can'?t change|cannot change|Unsupported Transfer Syntax|"
    r"Pixel representation cannot be changed|Unsupported pixel representation|could not (?:compress|decompress)|Could not change the Transfer Syntax|"
    r"No codec|codec",
    re.I,
)


def failure(adapter: SubprocessAdapter, run: ToolRun, what: str, path: Path | None = None) -> HubError:
    """The HubError for a failed run of `what` on `path` (the tool's output kept)."""
    said = run.stderr + "\n" + run.stdout
    tool = Path(run.args[0]).name
    if path is not None and (_NOT_FOUND.search(said) and not path.exists()):
        return adapter.fail(run, f"{tool}: input not found: {path}", ErrorCode.INPUT_NOT_FOUND, "check the path")
    if _CHARSET.search(said):
        return adapter.fail(run, f"{tool} cannot convert the file's character set to UTF-8", ErrorCode.BACKEND_ERROR, "the toolkit's iconv lacks this character set; use backend python")
    if _CODEC.search(said):
        return adapter.fail(run, f"{tool} cannot {what}", ErrorCode.CODEC_UNAVAILABLE, f"{adapter.toolkit} has no codec for this; try another backend")
    if path is not None and _READ.search(said):
        code = read_failure_code(path)
        hint = "the file is not DICOM" if code == ErrorCode.NOT_DICOM else "the file is damaged or truncated"
        return adapter.fail(run, f"{tool} cannot read {path.name}", code, hint)
    return adapter.fail(run, f"{tool} failed to {what} (exit code {run.returncode})")


def check(adapter: SubprocessAdapter, run: ToolRun, what: str, path: Path | None = None) -> ToolRun:
    """Return the run when it succeeded, else raise the mapped error."""
    if run.returncode != 0:
        raise failure(adapter, run, what, path)
    return run
