"""The optional re-identification report: original -> new patient identifiers and UIDs.

Written only when `options.mapping_file` is given. It holds the originals, so it is the one file
an authorized party keeps apart from the data. A second run (the other half of a batch) with the
same key and the same mapping file adds its entries to the existing report instead of replacing it.
Any other existing file is never replaced: `options.overwrite` is about the output, not this file
(and `side_files.py` keeps it away from every input and output).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output, special_file_kind

FORMAT_MARK = "dicom_hub_deid_mapping"


def write_mapping(path: Path, entries: Iterable[dict[str, Any]]) -> Path:
    """Merge `entries` ({patients, uids} per file) into the report at `path` (atomically)."""
    path = path.expanduser().absolute()
    report = _existing(path)
    for entry in entries:
        report["patients"].update(entry.get("patients", {}))
        report["uids"].update(entry.get("uids", {}))
    report["patients"] = dict(sorted(report["patients"].items()))
    report["uids"] = dict(sorted(report["uids"].items()))
    with atomic_output(path, overwrite=True, private=True) as tmp:  # it holds the originals: 0600
        tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def check_mapping(path: Path) -> None:
    """Fail early (before any output is written) when `path` could not take the report."""
    _existing(path.expanduser().absolute())


def _existing(path: Path) -> dict[str, Any]:
    """The report already at `path` (ours), a new one, or `output_exists` for a foreign file."""
    fresh: dict[str, Any] = {FORMAT_MARK: 1, "patients": {}, "uids": {}}
    special = special_file_kind(path)
    if special:  # reading a FIFO would wait forever, /dev/zero would never end
        raise HubError(ErrorCode.INVALID_REQUEST, f"mapping_file {path} is a {special}, not a regular file", "give a regular file or a new path")
    if not path.exists():
        return fresh
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        report = None
    if not isinstance(report, dict) or report.get(FORMAT_MARK) != 1:
        raise HubError(
            ErrorCode.OUTPUT_EXISTS,
            f"mapping_file {path} exists and is not a dicom-hub mapping report",
            "choose another mapping_file (options.overwrite concerns the output, never this file)",
        )
    report.setdefault("patients", {})
    report.setdefault("uids", {})
    return report
