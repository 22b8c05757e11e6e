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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dicom_hub.contract.dicom.part10 import read_dataset
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.files import atomic_output
from dicom_hub.contract.job import Job, Outcome

from .runner import (
    FileError,
    FileOutcome,
    discover,
    executor_metadata,
    iter_results,
    show_progress,
    summarize,
)
from .state import RunState, remove_own_temporaries

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
        if field is not None and spec:
            _check_spec(field, spec)
        parts.append((literal, field, spec or ""))
    return parts


# PEP 3101 format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?$", re.DOTALL)


def _check_spec(field: str, spec: str) -> None:
    """A spec must be plain (no nested fields) and no wider than a folder name may be: a width
    of a billion would allocate a gigabyte per file before the name is cut to size."""
    match = _SPEC.match(spec)
    if match is None:
        raise HubError(ErrorCode.INVALID_REQUEST, f"bad format spec {spec!r} for {{{field}}}", "use a plain spec such as {SeriesNumber:04d} or {PatientID:>8}")
    for part in ("width", "precision"):
        size = match.group(part)
        if size and int(size) > MAX_NAME:
            raise HubError(
                ErrorCode.INVALID_REQUEST,
                f"format spec {spec!r} for {{{field}}} asks for {int(size)} characters; a folder name has at most {MAX_NAME}",
                f"use a {part} of at most {MAX_NAME}",
            )


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
    from contextlib import nullcontext

    from .executors import executor_for

    assert job.output is not None
    parts = parse_template(job.option("by"))
    mode = job.option("mode")
    dry_run = bool(job.option("dry_run"))
    # The lock keeps two runs out of one output tree, which makes any temp file of ours found
    # there the leftover of a killed run (removed before its name is used again).
    with nullcontext() if dry_run else RunState(job.output, "organize") as state, executor_for(job) as executor:
        found = discover(job, executor)
        headers = iter_results(((f, None) for f in found), read_fields, template_keywords(parts), progress=show_progress(job), describe="organize", executor=executor)
        placing = _Placing(job.output, parts, mode, dry_run)
        outcome = summarize(placing.place(headers), skipped=lambda: found.files_skipped)
        outcome.metadata.update(executor_metadata(executor))
        if state is not None:
            state.remove()
    outcome.metadata.update(mode=mode, dry_run=dry_run, files_unchanged=placing.unchanged, folders=len(placing.folders))
    if dry_run:
        outcome.metadata["plan"] = placing.plan
        outcome.stdout = "".join(f"{step['source']} -> {step['target']}\n" for step in placing.plan)
    return outcome


class _Placing:
    """Each file's destination, decided and acted on as its header values come in.

    Destinations are told apart on disk: a file placed earlier in this run is there. Only what
    is not on disk is remembered: the whole plan in a dry run (it is the response), else the
    destinations whose placing failed (so a later file does not take their name either).
    """

    def __init__(self, output: Path, parts: list[tuple[str, str | None, str]], mode: str, dry_run: bool) -> None:
        self.output, self.parts, self.mode, self.dry_run = output, parts, mode, dry_run
        self.plan: list[dict[str, str]] = []
        self.planned: dict[Path, Path] = {}  # target -> source, for targets not on disk
        self.folders: set[Path] = set()
        self.unchanged = 0

    def place(self, headers: Iterable[FileOutcome]) -> Iterator[FileOutcome]:
        for item in headers:
            if item.error is not None:
                yield item
                continue
            target, same = _destination(self.output, render(self.parts, item.value), item.source, self.planned)
            if same:
                self.unchanged += 1
                continue
            if target.parent not in self.folders:
                self.folders.add(target.parent)
                if not self.dry_run:
                    _remove_stale_temporaries(target.parent)
            if self.dry_run:
                self.planned[target] = item.source
                self.plan.append({"source": str(item.source), "target": str(target)})
                yield FileOutcome(item.source, None)
                continue
            placed = _place(item.source, target, self.mode)
            if placed.error is not None:
                self.planned[target] = item.source
            yield placed


def _remove_stale_temporaries(folder: Path) -> None:
    """Temp files of copies a killed run of ours left in `folder` (we hold the output's lock)."""
    try:
        names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(".part")]
    except OSError:
        return
    remove_own_temporaries(folder, {_TEMP_BASE.sub("", name)[1:] for name in names})


_TEMP_BASE = re.compile(r"\.[A-Za-z0-9_]{6,32}\.part$")


def _destination(output: Path, folders: list[str], source: Path, planned: dict[Path, Path]) -> tuple[Path, bool]:
    """A free path for `source` (or the identical copy already there or placed there earlier in
    this run: `same` is True)."""
    folder = output.joinpath(*folders)
    name = sanitize_name(source.name)
    stem, ext = (name[: -len(source.suffix)], source.suffix) if source.suffix and name.endswith(source.suffix) else (name, "")
    candidate, n = folder / name, 2
    while candidate in planned or os.path.lexists(candidate):
        earlier = planned.get(candidate)
        if earlier is not None and _same_file(source, earlier if os.path.exists(earlier) else candidate):
            return candidate, True
        if earlier is None and candidate.is_file() and _same_file(source, candidate):
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
