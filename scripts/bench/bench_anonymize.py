#!/usr/bin/env python3
"""Benchmark: `batch_anonymize` (full PS3.15 E.1-1 profile) against `gdcmanon -e` (GDCM's basic
profile, with a throw-away self-signed certificate), whole process as a user runs each, on a
series and on a tree, in the same run.

    .venv/bin/python scripts/bench/bench_anonymize.py [--series DIR] [--tree DIR] [--repeat N] [--workers N]
        [--baseline DIR]

- gdcmanon -e -r -c CERT -i DIR -o OUT: one process; without `-r` gdcmanon silently processes no
  file of a folder's subfolders, so the tree is given with `-r` (it then mirrors the folders).
- ours: `dicom-hub run --op batch_anonymize --input DIR --output OUT` as a subprocess (start-up,
  imports, the worker pool and the JSON response included), every core unless --workers.
- `--baseline DIR`: another checkout of dicom-hub timed in the same interleaved runs (before and
  after a change, under the same load): DIR holds its `dicom_hub` package, e.g.
  `mkdir -p /tmp/base/dicom_hub && git archive main | tar -x -C /tmp/base/dicom_hub`; it runs
  with this interpreter and `PYTHONPATH=DIR`, as `python -m dicom_hub.interface`.
Ours runs as an installed tool runs: with its bytecode cached (PYTHONDONTWRITEBYTECODE is removed
from its environment, and one untimed run writes the cache). Both must write one output per
input file (counted recursively) or the run is refused. Defaults:
the 174-slice CT series `../shared/data/cerebrix-ct` and the 3,000-file tree `/work/bench/a3000`
(from `make_archive.py`). The files are read once beforehand so both tools start from a warm page
cache; runs are interleaved and the fastest wall time of each tool counts (on a shared machine the
slower runs measure the neighbours). CPU is user+system time of the whole process tree; the
system part is mostly the kernel creating and filling the output files, the same work for both
tools, and it varies from run to run: on an ext4 without a journal (this machine's), each new
inode is found by stepping over every inode deleted in the last ~30 s of its block group, so a
run right after a large delete pays up to ~1 ms a file more. So no output is deleted before
every run is done (a few hundred MB in the temporary folder); what other processes delete on a
shared machine still weighs on whichever run comes next.
Target: ours / gdcmanon files/s >= 1.0 on both.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, cpu_count, dicom_hub_exe  # noqa: E402

DEFAULT_TREE = Path("/work/bench/a3000")
# ../shared from a checkout in /work, ../../shared from a worktree in /work/wt.
DEFAULT_SERIES = next((p for p in (ROOT.parent / "shared/data/cerebrix-ct", ROOT.parents[1] / "shared/data/cerebrix-ct") if p.is_dir()), ROOT.parent / "shared/data/cerebrix-ct")
KEY = "bench-key-0123456789abcdef"
TARGET = 1.0


@dataclass
class Run:
    wall: float
    cpu: float
    sys: float = 0.0  # the kernel's part of `cpu` (creating and filling files: the same work for both tools)


def make_certificate(folder: Path) -> Path:
    """A self-signed RSA certificate for gdcmanon's encryption of the original values."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=dicom-hub-bench"],
        check=True,
        capture_output=True,
    )
    return cert


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def timed(args: list[str], env: dict[str, str] | None = None) -> tuple[Run, bytes]:
    """Wall and CPU time (the child and every process it waited for) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, check=False, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{args[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}")
    system = after.ru_stime - before.ru_stime
    cpu = (after.ru_utime - before.ru_utime) + system
    return Run(wall, cpu, system), done.stdout


def run_gdcmanon(folder: Path, out: Path, cert: Path, n: int) -> Run:
    out.mkdir(parents=True)
    run, _ = timed(["gdcmanon", "-e", "-r", "-c", str(cert), "-i", str(folder), "-o", str(out)])
    _check_count("gdcmanon", out, n)
    return run


def run_ours(folder: Path, out: Path, workers: int | None, n: int, baseline: Path | None = None) -> Run:
    options: dict[str, object] = {"key": KEY, "progress": False}
    if workers:
        options["workers"] = workers
    command = [dicom_hub_exe()] if baseline is None else [sys.executable, "-m", "dicom_hub.interface"]
    args = [*command, "run", "--op", "batch_anonymize", "--input", str(folder), "--output", str(out), "--options", json.dumps(options), "--backend", "python"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)
    run, stdout = timed(args, env=env)
    response = json.loads(stdout)
    if not response.get("ok") or response["metadata"]["files_failed"] or response["metadata"]["files_processed"] != n:
        sys.exit(f"batch_anonymize failed: {json.dumps(response)[:2000]}")
    _check_count("batch_anonymize", out, n)
    return run


def _check_count(tool: str, out: Path, n: int) -> None:
    written = len(files_under(out))
    if written != n:
        sys.exit(f"{tool} wrote {written} files for {n} inputs")


def bench(label: str, folder: Path, work: Path, cert: Path, repeat: int, workers: int | None, baseline: Path | None = None) -> float:
    files = files_under(folder)
    for path in files:  # warm the page cache for both tools
        path.read_bytes()
    n = len(files)
    run_ours(folder, work / f"{label}-warm-up", workers, n)  # untimed: bytecode cache, page cache
    tools = ["gdcm", "ours"]
    if baseline is not None:
        run_ours(folder, work / f"{label}-baseline-warm-up", workers, n, baseline)
        tools.append("baseline")
    runs: dict[str, list[Run]] = {tool: [] for tool in tools}
    for i in range(repeat):
        # Each tool starts with no dirty pages left by another: without the sync, whichever runs
        # next is throttled while the kernel writes back the previous one's output. Who goes
        # first rotates.
        for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:
            os.sync()
            out = work / f"{label}-{tool}{i}"
            if tool == "gdcm":
                runs[tool].append(run_gdcmanon(folder, out, cert, n))
            else:
                runs[tool].append(run_ours(folder, out, workers, n, baseline if tool == "baseline" else None))
        # Outputs are kept until the end: deleting them here would make the next run pay for it
        # (see the module docstring), whichever tool that is.
    best = {tool: min(tool_runs, key=lambda r: r.wall) for tool, tool_runs in runs.items()}
    gdcm, ours = best["gdcm"], best["ours"]
    ratio = gdcm.wall / ours.wall
    print(f"{label}: {n} files ({folder}); load average {os.getloadavg()[0]:.2f}")
    names = {"gdcm": "gdcmanon -e -r (basic profile, 1 process)", "ours": "dicom-hub batch_anonymize (full profile) ", "baseline": f"baseline ({baseline})"}
    for tool, run in best.items():
        print(f"  {names[tool]:42s} {n / run.wall:8.1f} files/s  {run.cpu / n * 1000:6.2f} ms CPU/file (system {run.sys / n * 1000:.2f})  ({run.wall:.2f} s)")
    print(f"  ratio ours / gdcmanon files/s: {ratio:.2f} (target >= {TARGET:.1f}); CPU ratio gdcmanon / ours: {gdcm.cpu / ours.cpu:.2f}")
    if "baseline" in best:
        print(f"  ratio ours / baseline files/s: {best['baseline'].wall / ours.wall:.2f}; CPU ratio baseline / ours: {best['baseline'].cpu / ours.cpu:.2f}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=DEFAULT_SERIES, help="a series folder (default: the 174-slice CT)")
    parser.add_argument("--tree", type=Path, default=DEFAULT_TREE, help="a tree of files (default: /work/bench/a3000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool, interleaved; the fastest counts")
    parser.add_argument("--workers", type=int, default=None, help="batch_anonymize workers (default: all cores)")
    parser.add_argument("--baseline", type=Path, default=None, help="a folder holding another checkout's dicom_hub package, timed in the same runs")
    args = parser.parse_args()
    if shutil.which("gdcmanon") is None:
        sys.exit("gdcmanon is not on PATH (apt-get install libgdcm-tools)")
    print(f"{cpu_count()} cores; load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="bench-anon-") as tmp:
        work = Path(tmp)
        cert = make_certificate(work)
        for label, folder in (("series", args.series), ("tree", args.tree)):
            if not folder.is_dir():
                print(f"{label}: {folder} is not a folder, skipped (make one with scripts/bench/make_archive.py)")
                continue
            ratios[label] = bench(label, folder, work, cert, args.repeat, args.workers, args.baseline)
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("ratios: " + ", ".join(f"{label} {ratio:.2f}" for label, ratio in ratios.items()) + f" (target >= {TARGET:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
