"""Helpers shared by the benchmarks: timing commands and printing ratios against a target."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SHARED_CT = ROOT.parent / "shared" / "data" / "cerebrix-ct"


def dicom_hub_exe() -> str:
    exe = VENV_BIN / "dicom-hub"
    return str(exe) if exe.exists() else "dicom-hub"


def time_command(args: list[str], stdin: bytes | None = None, repeat: int = 1) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of the child) over `repeat` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(walls), statistics.median(cpus)


def report(label: str, ours: float, peer: float, target: str) -> None:
    ratio = ours / peer if peer else float("inf")
    print(f"{label}: ours {ours:.4g}, peer {peer:.4g}, ratio {ratio:.2f} (target: {target})")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
