"""`organize`: sort DICOM files into folders named from their own header values.

`options.by` is a preset (`patient`, `study`, `series`, `modality`) or a template of DICOM
keywords in `str.format` syntax, `/` separating folder levels:
`{PatientID}/{StudyDate}_{StudyInstanceUID}/{SeriesNumber:04d}_{Modality}`.

Header values are hostile input (a UID of `../../x`, a name with slashes), so every value is
sanitized before it meets the template, and every resulting folder name again: no path
separators, no control or reserved characters, no leading dots (so never `.` or `..`), at most
128 characters and 240 bytes (longer names are cut and end with a hash, so they stay distinct). Files keep their
own (sanitized) names. A destination that exists is never replaced: an identical file counts as
already organized, a different one gives the new file a `_2`, `_3`, ... name.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import shutil
import string
from pathlib import Path
from typing import Any

from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .._dataset import read_dataset
from .discovery import scan
from .runner import FileError, FileOutcome, iter_results, show_progress, summarize, workers_option

PRESETS = {
    "patient": "{PatientID}",
    "study": "{PatientID}/{StudyInstanceUID}",
    "series": "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}",
    "modality": "{Modality}",
}
MISSING = "UNKNOWN"
MAX_NAME = 128
MAX_BYTES = 240
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')


def parse_template(by: str) -> list[tuple[str, str | None, str]]:
    """`by` as (literal text, keyword or None, format spec) parts; bad templates are refused."""
    template = PRESETS.get(by, by)
    from pydicom.datadict import tag_for_keyword

    if template.startswith("/") or any(part in (".", "..") for part in template.split("/")):
        raise HubError(ErrorCode.INVALID_REQUEST, f"template {by!r} is absolute or has '.'/'..' parts", "use relative folder levels such as {PatientID}/{Modality}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise HubError(ErrorCode.INVALID_REQUEST, f"bad template {by!r}: {err}", "fields look like {PatientID} or {SeriesNumber:04d}") from None
    parts = []
    for literal, field, spec, conversion in parsed:
        if field is not None and (conversion or not field or tag_for_keyword(field) is None):
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"template field {field!r} is not a DICOM keyword",
                f"use a preset ({', '.join(PRESETS)}) or keywords such as {{PatientID}}, {{StudyDate}}, {{SeriesNumber:04d}}",
            )
        parts.append((literal, field, spec or ""))
    return parts


def template_keywords(parts: list[tuple[str, str | None, str]]) -> tuple[str, ...]:
    return tuple(sorted({field for _, field, _ in parts if field}))


def read_fields(source: Path, _target: Path | None, keywords: tuple[str, ...]) -> dict[str, Any]:
    """The template's values of one file: IS as int, DS as float (for format specs), else text."""
    ds = read_dataset(source, stop_before_pixels=True)
    values: dict[str, Any] = {}
    for keyword in keywords:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        if isinstance(value, int):
            values[keyword] = int(value)
        elif isinstance(value, float):
            values[keyword] = float(value)
        elif isinstance(value, list) or type(value).__name__ == "MultiValue":
            values[keyword] = "_".join(str(v) for v in value)
        else:
            values[keyword] = str(value)
    return values


def render(parts: list[tuple[str, str | None, str]], values: dict[str, Any]) -> list[str]:
    """The folder names for one file's values, each sanitized."""
    text = ""
    for literal, field, spec in parts:
        text += literal
        if field is not None:
            text += sanitize_value(_format(values.get(field, MISSING), spec))
    return [sanitize_name(name) for name in text.split("/")]


def sanitize_value(text: str) -> str:
    """A header value made safe to put inside a folder name (no separators, no controls)."""
    return _UNSAFE.sub("_", text).strip()


def sanitize_name(name: str) -> str:
    """One safe path component: no separators or controls, no leading dot, bounded length."""
    name = _UNSAFE.sub("_", name).strip().rstrip(".")
    name = re.sub(r"^\.+", lambda m: "_" * len(m.group()), name)
    if not name:
        return "_"
    if len(name) > MAX_NAME or len(name.encode("utf-8")) > MAX_BYTES:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
        head = name[: MAX_NAME - 9]
        while len(head.encode("utf-8")) > MAX_BYTES - 9:
            head = head[:-1]
        name = f"{head}_{digest}"
    return name


def _format(value: Any, spec: str) -> str:
    try:
        return format(value, spec)
    except (ValueError, TypeError):
        return str(value)


def organize(job: Job) -> Outcome:
    assert job.output is not None
    parts = parse_template(job.option("by", "series"))
    mode = job.option("mode", "copy")
    dry_run = bool(job.option("dry_run", False))
    found = scan(job.inputs, recursive=bool(job.option("recursive", True)), include_raw=bool(job.option("include_raw", False)))
    headers = iter_results([(f, None) for f in found.files], read_fields, template_keywords(parts), workers_option(job), show_progress(job), "organize")
    outcomes: list[FileOutcome] = []
    plan: list[dict[str, str]] = []
    planned: set[Path] = set()
    unchanged = 0
    for item in headers:
        if item.error is not None:
            outcomes.append(item)
            continue
        target, same = _destination(job.output, render(parts, item.value), item.source, planned)
        if same:
            unchanged += 1
            continue
        planned.add(target)
        plan.append({"source": str(item.source), "target": str(target)})
        outcomes.append(FileOutcome(item.source, None) if dry_run else _place(item.source, target, mode))
    outcome = summarize(outcomes, skipped=len(found.skipped))
    outcome.metadata.update(mode=mode, dry_run=dry_run, files_unchanged=unchanged, folders=len({p.parent for p in planned}))
    if dry_run:
        outcome.metadata["plan"] = plan
        outcome.stdout = "".join(f"{step['source']} -> {step['target']}\n" for step in plan)
    return outcome


def _destination(output: Path, folders: list[str], source: Path, planned: set[Path]) -> tuple[Path, bool]:
    """A free path for `source` (or the existing identical copy: `same` is True)."""
    folder = output.joinpath(*folders)
    name = sanitize_name(source.name)
    stem, ext = (name[: -len(source.suffix)], source.suffix) if source.suffix and name.endswith(source.suffix) else (name, "")
    candidate, n = folder / name, 2
    while candidate in planned or os.path.lexists(candidate):
        if candidate not in planned and candidate.is_file() and _same_file(source, candidate):
            return candidate, True
        candidate, n = folder / f"{stem}_{n}{ext}", n + 1
    return candidate, False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def _place(source: Path, target: Path, mode: str) -> FileOutcome:
    """Copy, move or link one file; never replaces anything at `target`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "link":
            os.symlink(source.resolve(), target)
        elif mode == "move":
            _move(source, target)
        else:
            _copy(source, target)
    except HubError as err:
        return FileOutcome(source, target, None, FileError(str(source), err.code.value, err.message))
    except FileExistsError:
        return FileOutcome(source, target, None, FileError(str(source), ErrorCode.OUTPUT_EXISTS.value, f"{target} appeared during the run; left untouched"))
    except OSError as err:
        return FileOutcome(source, target, None, FileError(str(source), ErrorCode.OUTPUT_ERROR.value, f"cannot {mode} to {target}: {err.strerror or err}"))
    return FileOutcome(source, target)


def _copy(source: Path, target: Path) -> None:
    with atomic_output(target, overwrite=False) as tmp:
        shutil.copyfile(source, tmp)
        shutil.copystat(source, tmp)


def _move(source: Path, target: Path) -> None:
    """A hard link then unlink on one filesystem (atomic, cannot replace); else copy then unlink."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        _copy(source, target)
    source.unlink()
