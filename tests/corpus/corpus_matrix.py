"""The real-world corpus matrix: every corpus file x every backend x the everyday ops.

A cell is one (file, backend, op) run through the real dispatcher. Its state is `ok` (and then
its output is verified against pydicom's reading of the input) or the error code it refused
with. `expected.json` records every cell's state; a test fails when a cell changes.

Regenerate the record after a deliberate change (review the diff like code):

    DICOM_HUB_CORPUS_UPDATE=1 .venv/bin/python -m pytest -q tests/corpus

The default run keeps CI short: real files with at most 1 MiB of pixels, a rotating share of the
generated set, and PixelMed (a JVM start, ~1 s, per run) on `PIXELMED_DEFAULT_FILES` only.
`DICOM_HUB_CORPUS_FULL=1` runs every file on every backend (about 15 minutes on a busy 2-core machine).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import run_request

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected.json"
BACKENDS = ("python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp")
OPS = ("info", "dump", "to_json", "validate", "stats", "to_image", "decompress")
EXPLICIT_LE = "1.2.840.10008.1.2.1"
FULL = os.environ.get("DICOM_HUB_CORPUS_FULL") == "1"
REPORT = os.environ.get("DICOM_HUB_CORPUS_REPORT")  # a file: one JSON line per cell (state, message, ms)
UPDATE = os.environ.get("DICOM_HUB_CORPUS_UPDATE") == "1"
# The files PixelMed runs on by default: one of each encoding family and each known trap.
PIXELMED_DEFAULT_FILES = frozenset(
    {
        "pd:JPEG-LL.dcm",
        "pd:OBXXXX1A_rle.dcm",
        "pd:eCT_Supplemental.dcm",
        "pd:emri_small_big_endian.dcm",
        "pd:explicit_VR-UN.dcm",
        "pd:liver.dcm",
        "gen:liver_1bit_rle.dcm",
        "gen:rgb8u_2f_deflated.dcm",
    }
)
# Info keys every backend must report equal to pydicom's reading of the header.
INFO_KEYS = ("SOPInstanceUID", "Modality", "Rows", "Columns", "PatientID")


@dataclass
class Cell:
    """One run: its state (`ok` or an error code), the response, and what is wrong with an ok answer."""

    file: str
    backend: str
    op: str
    state: str
    response: dict[str, Any]
    output: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.backend} {self.op}"


# Files whose decoded pixels exceed this run only with DICOM_HUB_CORPUS_FULL=1 (a few large CR/US
# images cost more than the rest of the corpus together).
DEFAULT_MAX_PIXEL_BYTES = 1 << 20


def in_default_run(name: str, path: Path) -> bool:
    """Whether the default (CI) run covers this file: real files up to 1 MiB of pixels, a share of the generated set."""
    from corpus_files import DEFAULT_GENERATED

    if name.startswith("gen:"):
        return name in DEFAULT_GENERATED
    from dicom_hub.adapters.toolkit.pixel_input import read_pixel_header
    from dicom_hub.contract.errors import HubError

    try:
        header = read_pixel_header(path)
    except HubError:  # a damaged file: exactly what the default run should see
        return True
    return header.rows * header.columns * header.samples * header.frames * max(header.bits_allocated, 8) // 8 <= DEFAULT_MAX_PIXEL_BYTES


def runs_backend(name: str, backend: str) -> bool:
    """Whether this file is run on this backend in this session (PixelMed: a subset unless FULL)."""
    return backend != "pixelmed" or FULL or name in PIXELMED_DEFAULT_FILES


def request_for(op: str, backend: str, path: Path, out_dir: Path) -> tuple[dict[str, Any], Path | None]:
    """The request of one cell, and the output file it writes (if any)."""
    request: dict[str, Any] = {"op": op, "backend": backend, "input": str(path), "options": {}}
    output = None
    if op == "to_image":
        output = out_dir / f"{backend}.png"
    elif op == "to_json":
        output = out_dir / f"{backend}.json"
    elif op == "decompress":
        output = out_dir / f"{backend}.dcm"
        request["op"] = "transcode"
        request["options"] = {"transfer_syntax": "explicit"}
    if output is not None:
        request["output"] = str(output)
    return request, output


def run_cell(name: str, backend: str, op: str, path: Path, out_dir: Path) -> Cell:
    request, output = request_for(op, backend, path, out_dir)
    response = run_request(request)
    state = "ok" if response["ok"] else response["error"]["code"]
    return Cell(name, backend, op, state, response, output if response["ok"] else None)


# -- the truth: pydicom's reading of the input ----------------------------------------------------
@dataclass(frozen=True)
class Truth:
    header: dict[str, Any]
    transfer_syntax: str | None
    pixels: Any | None  # numpy array pydicom decodes, None when it cannot
    lossy: bool


def truth_of(path: Path) -> Truth:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    header = {key: _plain(ds.get(key)) for key in INFO_KEYS}
    ts = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
    try:
        pixels = ds.pixel_array if "PixelData" in ds else None
    except Exception:
        pixels = None
    lossy = ts in {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"}
    return Truth(header, ts, pixels, lossy)


def _plain(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return int(value)
    return str(value).strip()


# -- verifying an ok answer ------------------------------------------------------------------------
def verify(cell: Cell, truth: Truth) -> list[str]:
    """What is wrong with an ok cell's answer (empty when it is right)."""
    check = globals()[f"_verify_{cell.op}"]
    try:
        return check(cell, truth)
    except Exception as exc:  # noqa: BLE001 - an unreadable output is a finding, not a crash
        return [f"output cannot be checked: {type(exc).__name__}: {exc}"]


def _verify_info(cell: Cell, truth: Truth) -> list[str]:
    meta = cell.response["metadata"]
    flat: dict[str, Any] = {}
    for level in meta.values():
        if isinstance(level, dict):
            flat.update(level)
    problems = []
    for key, want in truth.header.items():
        got = _plain(flat.get(key))
        if want is not None and got != want:
            problems.append(f"{key}: {got!r}, pydicom reads {want!r}")
    ts = (meta.get("file") or {}).get("transfer_syntax")
    if truth.transfer_syntax and ts and ts != truth.transfer_syntax:
        problems.append(f"transfer syntax {ts}, file has {truth.transfer_syntax}")
    return problems


def _verify_dump(cell: Cell, truth: Truth) -> list[str]:
    text = cell.response["stdout"]
    uid = truth.header["SOPInstanceUID"]
    if uid and uid[:40] not in text:  # some dumps cut long values at a line width
        return [f"the dump does not show the SOP Instance UID {uid}"]
    return [] if text.strip() else ["empty dump"]


def _verify_to_json(cell: Cell, truth: Truth) -> list[str]:
    document = json.loads(cell.output.read_text(encoding="utf-8"))
    uid = truth.header["SOPInstanceUID"]
    got = (document.get("00080018") or {}).get("Value", [None])[0]
    if uid and got != uid:
        return [f"SOP Instance UID {got!r} in the JSON, pydicom reads {uid!r}"]
    return []


def _verify_validate(cell: Cell, truth: Truth) -> list[str]:
    valid = cell.response["metadata"].get("valid")
    return [] if isinstance(valid, bool) else [f"no valid: true/false in the answer ({valid!r})"]


def _verify_stats(cell: Cell, truth: Truth) -> list[str]:
    meta = cell.response["metadata"]
    if not all(isinstance(meta.get(k), int | float) for k in ("min", "max")):
        return ["no min/max"]
    return [] if meta["min"] <= meta["max"] else [f"min {meta['min']} > max {meta['max']}"]


def _verify_to_image(cell: Cell, truth: Truth) -> list[str]:
    from PIL import Image

    with Image.open(cell.output) as image:
        image.load()
        size = image.size
    rows, columns = truth.header["Rows"], truth.header["Columns"]
    if rows and columns and size != (columns, rows):
        return [f"image is {size[0]}x{size[1]}, the file is {columns}x{rows}"]
    return []


def _verify_decompress(cell: Cell, truth: Truth) -> list[str]:
    import numpy as np
    import pydicom

    out = pydicom.dcmread(cell.output)
    problems = []
    if str(out.file_meta.TransferSyntaxUID) != EXPLICIT_LE:
        problems.append(f"written as {out.file_meta.TransferSyntaxUID}, not Explicit VR Little Endian")
    if truth.header["SOPInstanceUID"] and str(out.get("SOPInstanceUID", "")) != truth.header["SOPInstanceUID"]:
        problems.append("SOP Instance UID changed by a lossless decompression")
    if "PixelData" not in out:
        return [*problems, "the output has no Pixel Data"]
    decoded = out.pixel_array
    if truth.pixels is not None and not truth.lossy:
        if decoded.shape != truth.pixels.shape:
            problems.append(f"pixels shaped {decoded.shape}, pydicom decodes {truth.pixels.shape}")
        elif not np.array_equal(decoded, truth.pixels):
            diff = np.abs(decoded.astype("int64") - truth.pixels.astype("int64"))
            problems.append(f"pixels differ from pydicom's decode ({int((diff > 0).sum())} samples, up to {int(diff.max())})")
    return problems


# -- agreement across backends ---------------------------------------------------------------------
def disagreements(cells: list[Cell], truth: Truth) -> list[str]:
    """Where ok cells of different backends disagree with each other (beyond the per-cell checks)."""
    import numpy as np
    import pydicom

    problems = []
    if truth.pixels is None or truth.lossy:
        decoded = {c.backend: pydicom.dcmread(c.output).pixel_array for c in cells if c.op == "decompress" and c.state == "ok" and not c.problems}
        if len(decoded) > 1 and not truth.lossy:
            first, *others = decoded
            for other in others:
                if decoded[other].shape != decoded[first].shape or not np.array_equal(decoded[other], decoded[first]):
                    problems.append(f"decompress: {other}'s pixels differ from {first}'s")
    stats = {c.backend: c.response["metadata"] for c in cells if c.op == "stats" and c.state == "ok"}
    if len(stats) > 1:
        first, *others = stats
        for other in others:
            a, b = stats[first], stats[other]
            same_kind = a.get("modality_lut_applied") == b.get("modality_lut_applied") and a.get("samples_per_pixel", 1) == b.get("samples_per_pixel", 1)
            if same_kind and (not _close(a["min"], b["min"]) or not _close(a["max"], b["max"])):
                problems.append(f"stats: {other} min/max {b['min']}/{b['max']} ({b.get('values')}), {first} {a['min']}/{a['max']}")
    return problems


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-3 * max(1.0, abs(float(a)), abs(float(b)))


def report(cells: list[Cell]) -> None:
    """Append each cell's state, error message and duration to $DICOM_HUB_CORPUS_REPORT (for reviewing a run)."""
    if not REPORT:
        return
    with open(REPORT, "a", encoding="utf-8") as fh:
        for c in cells:
            error = c.response.get("error") or {}
            line = {"file": c.file, "backend": c.backend, "op": c.op, "state": c.state, "ms": c.response.get("duration_ms"), "message": error.get("message"), "problems": c.problems}
            fh.write(json.dumps(line) + "\n")


# -- the record --------------------------------------------------------------------------------------
def load_expected() -> dict[str, dict[str, str]]:
    if not EXPECTED.exists():
        return {}
    return json.loads(EXPECTED.read_text())["cells"]


def save_expected(cells: dict[str, dict[str, str]]) -> None:
    document = {
        "$comment": "State of every corpus cell (file -> 'backend op' -> ok or the error code); written by DICOM_HUB_CORPUS_UPDATE=1 pytest tests/corpus (see tests/corpus/matrix.py).",
        "cells": {name: dict(sorted(states.items())) for name, states in sorted(cells.items())},
    }
    EXPECTED.write_text(json.dumps(document, indent=1) + "\n")
