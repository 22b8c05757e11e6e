#!/usr/bin/env python3
"""Benchmark: a CT series folder to NIfTI with `dicom-hub run --op nifti` against dcm2niix, same run.

    .venv/bin/python scripts/bench/bench_nifti.py [SERIES_DIR] [--repeat 3]

The series is ../shared/data/cerebrix-ct (174 slices) unless a folder is given. dcm2niix runs
without BIDS sidecar, cropping or merging (`-b n -x i -m n`). Three pairs, each timed as whole
processes (start-up included) and interleaved run by run, so machine load hits both sides:
  .nii.gz, gzip level 1 on both (dcm2niix `-z y -1`, i.e. pigz on every core)  <- the target row
  .nii.gz, each tool's default (dcm2niix pigz level 6; dicom-hub level 1)
  .nii, uncompressed on both (dcm2niix `-z n`)
After the timed runs the .nii.gz images are compared (shape, affine, voxels): both did the same work.
Target: ratio (ours / dcm2niix) <= 2.0.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_CT, dicom_hub_exe, report, time_command  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", nargs="?", type=Path, default=SHARED_CT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix is None:
        print("dcm2niix is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 2
    if not args.series.is_dir():
        print(f"no series folder at {args.series}", file=sys.stderr)
        return 2
    count = sum(1 for p in args.series.iterdir() if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"series: {args.series} ({count} files), median of {args.repeat} interleaved run(s)")
        for label, ours_name, peer_flags in (
            ("nii.gz, gzip level 1 both", "ours.nii.gz", ["-z", "y", "-1"]),
            ("nii.gz, default levels   ", "ours.nii.gz", ["-z", "y"]),
            ("nii, uncompressed        ", "ours.nii", ["-z", "n"]),
        ):
            ours_out, ref_dir = work / ours_name, work / f"ref{len(peer_flags)}{peer_flags[1]}"
            ref_dir.mkdir(exist_ok=True)
            request = {"op": "nifti", "input": str(args.series), "output": str(ours_out), "options": {"overwrite": True}}
            (work / "request.json").write_text(json.dumps(request))
            ours_cmd = [dicom_hub_exe(), "run", "--request-file", str(work / "request.json")]
            ref_cmd = [dcm2niix, "-b", "n", *peer_flags, "-x", "i", "-m", "n", "-w", "1", "-f", "ref", "-o", str(ref_dir), str(args.series)]
            ours, peer = _interleaved(ours_cmd, ref_cmd, args.repeat)
            report(f"{label} wall s", ours, peer, "ratio <= 2.0")
        _check_same(work / "ours.nii.gz", next((work / "ref3y").glob("*.nii.gz")))
    return 0


def _interleaved(ours_cmd: list[str], peer_cmd: list[str], repeat: int) -> tuple[float, float]:
    ours, peer = [], []
    for _ in range(repeat):
        ours.append(time_command(ours_cmd)[0])
        peer.append(time_command(peer_cmd)[0])
    return statistics.median(ours), statistics.median(peer)


def _check_same(ours: Path, reference: Path) -> None:
    import nibabel
    import numpy as np

    a, b = nibabel.load(ours), nibabel.load(reference)
    same = a.shape == b.shape and np.abs(a.affine - b.affine).max() < 1e-3 and np.array_equal(a.get_fdata(), b.get_fdata())
    print(f"outputs agree (shape, affine within 1e-3 mm, voxels): {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    raise SystemExit(main())
