"""Helpers shared by the pixel tests: run our ops, run DCMTK on the same input, read the results."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from conftest import expect_ok, require_tool, sample
from PIL import Image
from pydicom import dcmread


def render(tmp_path: Path, source: str, name: str = "ours.png", **options: Any) -> tuple[np.ndarray, dict]:
    """Our to_image output as an int array, and the response metadata."""
    out = tmp_path / name
    data = expect_ok({"op": "to_image", "input": source, "output": str(out), "options": options})
    with Image.open(out) as img:
        return np.asarray(img).astype(np.int64), data["metadata"]


def run_tool(tool: str, *args: str | Path) -> None:
    """Run a reference tool (DCMTK, or GDCM's gdcmconv); a failure shows its output."""
    exe = require_tool(tool)
    run = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"{tool} failed ({run.returncode}): {run.stderr or run.stdout}"


def dcmj2pnm(tmp_path: Path, sample_name: str, *flags: str, name: str = "dcmtk.png") -> np.ndarray:
    """DCMTK's rendering of a bundled sample as PNG (`+on`, or whatever `flags` say)."""
    out = tmp_path / name
    run_tool("dcmj2pnm", *(flags or ("+on",)), sample(sample_name), out)
    with Image.open(out) as img:
        return np.asarray(img).astype(np.int64)


def transcode(tmp_path: Path, source: str | Path, target: str, name: str | None = None, **options: Any) -> tuple[Path, dict]:
    out = tmp_path / (name or f"{target}.dcm")
    data = expect_ok({"op": "transcode", "input": str(source), "output": str(out), "options": {"transfer_syntax": target, **options}})
    return out, data["metadata"]


def pixels(path: str | Path) -> np.ndarray:
    """Decoded pixels of a file (pydicom, colour as stored after decoding)."""
    return dcmread(path).pixel_array
