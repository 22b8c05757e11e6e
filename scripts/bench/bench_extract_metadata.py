#!/usr/bin/env python3
"""Benchmark: `extract_metadata` against a plain one-process pydicom loop and DCMTK's `dcmdump`
over the same archive, in the same run; plus `batch_convert` files/second.

    .venv/bin/python scripts/bench/make_archive.py /tmp/archive --files 20000
    .venv/bin/python scripts/bench/bench_extract_metadata.py /tmp/archive [--workers N] [--convert-files 300] [--scaling]

- dcmdump -q -M +sd +r ARCHIVE: reads every header in C++ (the practical ceiling); output to a file.
- pydicom loop: dcmread(stop_before_pixels=True), flatten every element (sequences included),
  csv module — one process, the way a script would do it.
- extract_metadata: `dicom-hub run` (process start-up included), every core unless --workers.
Each is a separate process; peak memory is the largest summed RSS of its process tree, sampled
every 0.1 s; CPU is the tree's user+system time. The files are read once beforehand so every tool
starts from a warm page cache; dcmdump and extract_metadata run --repeat times, interleaved, and the
fastest run of each counts (on a shared machine the slower runs measure the neighbours). Python runs
as an installed program does, from compiled bytecode: a PYTHONDONTWRITEBYTECODE in the environment
is dropped for the children, whose bytecode cache goes to the benchmark's temp folder, filled by one
unmeasured run first. The load average is printed with the numbers.
Target: extract_metadata >= 1.5 x dcmdump's files/second (whole process, start-up included), and
peak memory flat in the file count (--scaling also runs extract_metadata on half of the patients to
show it).
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
from _common import cpu_count, dicom_hub_exe  # noqa: E402

BASELINE = r"""
import csv, os, sys
from pydicom import dcmread

def flatten(ds, prefix, row):
    for elem in ds:
        if elem.tag == 0x7FE00010:
            continue
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                flatten(item, f"{prefix}{elem.keyword or elem.tag}[{i}].", row)
        else:
            row[f"{prefix}{elem.keyword} {elem.tag}"] = str(elem.value)

rows, columns = [], set()
for folder, _, names in os.walk(sys.argv[1]):
    for name in sorted(names):
        path = os.path.join(folder, name)
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        row = {"path": path}
        flatten(ds.file_meta, "", row)
        flatten(ds, "", row)
        rows.append(row)
        columns.update(row)
with open(sys.argv[2], "w", newline="") as f:
    writer = csv.DictWriter(f, sorted(columns))
    writer.writeheader()
    writer.writerows(rows)
print(len(rows))
"""


def tree_rss(root_pid: int) -> int:
    """Summed resident memory (bytes) of a process and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    family, grew = {root_pid}, True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in family} - family
        family |= new
        grew = bool(new)
    return sum(rss.get(pid, 0) for pid in family)


@dataclass
class Measure:
    """One run of one command: wall and CPU seconds (its whole process tree), peak memory, output."""

    wall: float
    cpu: float
    peak_mb: float
    text: str = ""


def installed_env(cache: Path) -> dict[str, str]:
    """The environment of an installed program: bytecode compiled once and reused (here into
    `cache`), not recompiled at every start because the shell set PYTHONDONTWRITEBYTECODE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


CHILD_ENV: dict[str, str] | None = None  # set by main(): see installed_env


def run_measured(args: list[str], stdin: bytes | None = None, want_text: bool = True) -> Measure:
    """Run a command, sampling its process tree's memory; stdout goes to a file, so a large
    output can never block the child while it is being measured."""
    with tempfile.TemporaryFile() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL, env=CHILD_ENV)
        if stdin:
            proc.stdin.write(stdin)
            proc.stdin.close()
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.1)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.seek(0)
        text = out.read().decode(errors="replace") if want_text else ""
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed with exit code {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(wall, cpu, peak / 2**20, text)


def warm_cache(archive: Path) -> int:
    count = 0
    for path in archive.rglob("*"):
        if path.is_file():
            path.read_bytes()
            count += 1
    return count


def run_op(op: str, inputs: list[Path], output: Path, workers: int | None) -> tuple[Measure, dict]:
    """One `dicom-hub run` of a batch op (a fresh output each time): the measure and the metadata."""
    if output.exists():
        output.unlink() if output.is_file() else shutil.rmtree(output)
    options: dict = {"progress": False}
    if workers:
        options["workers"] = workers
    request = {"op": op, "input": [str(p) for p in inputs], "output": str(output), "options": options}
    measure = run_measured([dicom_hub_exe(), "run", "-"], stdin=json.dumps(request).encode())
    response = json.loads(measure.text)
    if not response["ok"]:
        sys.exit(f"{op} failed: {response['error']}")
    return measure, response["metadata"]


def best(measures: list[Measure]) -> Measure:
    """The fastest of several runs (the one least disturbed by other load), with the largest peak."""
    fastest = min(measures, key=lambda m: m.wall)
    return Measure(fastest.wall, fastest.cpu, max(m.peak_mb for m in measures))


def line(label: str, files: int, m: Measure) -> float:
    rate = files / m.wall
    print(f"  {label:<36} {rate:8.1f} files/s  {m.wall:7.2f} s wall  {1000 * m.cpu / max(files, 1):6.2f} CPU s/1000 files  peak RSS {m.peak_mb:6.1f} MB")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--workers", type=int, default=None, help="extract_metadata workers (default: all cores)")
    parser.add_argument("--convert-files", type=int, default=300, help="files for the batch_convert measure (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of dcmdump and extract_metadata (interleaved); the best is kept")
    parser.add_argument("--scaling", action="store_true", help="also run extract_metadata on half of the patients")
    args = parser.parse_args()
    dcmdump = shutil.which("dcmdump")
    files = warm_cache(args.archive)
    print(f"archive {args.archive}: {files} files; {cpu_count()} cores; extract_metadata workers: {args.workers or 'all'}")
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    global CHILD_ENV
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        work = Path(tmp)
        CHILD_ENV = installed_env(work / "pycache")
        run_op("extract_metadata", [args.archive], work / "warm-up.csv", args.workers)  # fills the bytecode cache
        dumps: list[Measure] = []
        runs: list[Measure] = []
        for _ in range(args.repeat):  # interleaved, so a burst of other load hits both alike
            if dcmdump:
                dumps.append(run_measured([dcmdump, "-q", "-M", "+sd", "+r", str(args.archive)], want_text=False))
            measure, meta = run_op("extract_metadata", [args.archive], work / "ours.csv", args.workers)
            runs.append(measure)
        loop = run_measured([sys.executable, "-c", BASELINE, str(args.archive), str(work / "baseline.csv")])
        print(f"best of {args.repeat} runs (the pydicom loop: 1 run):")
        rates = {"ours": line("extract_metadata", meta["rows"], best(runs))}
        if dumps:
            rates["dcmdump"] = line("dcmdump -q -M +sd +r", files, best(dumps))
        else:
            print("  dcmdump not found (install dcmtk): no ceiling measured")
        rates["loop"] = line("pydicom loop (1 process)", int(loop.text.strip() or 0), loop)
        print(f"  (extract_metadata: rows {meta['rows']}, columns {meta['columns']}, failed {meta['files_failed']})")
        if args.scaling:
            patients = sorted(p for p in args.archive.iterdir() if p.is_dir())
            half = patients[: max(1, len(patients) // 2)]
            measure, half_meta = run_op("extract_metadata", half, work / "half.csv", args.workers)
            line("extract_metadata, half the patients", half_meta["rows"], measure)
        if "dcmdump" in rates:
            print(f"ratio extract_metadata / dcmdump: {rates['ours'] / rates['dcmdump']:.2f} (target >= 1.5)")
        print(f"ratio extract_metadata / pydicom loop: {rates['ours'] / rates['loop']:.2f}")
        if args.convert_files:
            from dicom_hub.python_backend.batch.discovery import find_dicom_files

            subset = find_dicom_files(args.archive)[: args.convert_files]
            measure, convert_meta = run_op("batch_convert", subset, work / "png", args.workers)
            line("batch_convert (PNG, start-up included)", convert_meta["files_processed"], measure)
    print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
