"""Start-up and streaming speed of `dicom-hub run`.

1. `dicom-hub run --op info` on sample:CT_small.dcm against a bare `python -c` that imports
   pydicom and reads the same file (target: ratio <= 1.5).
2. `dicom-hub run --stream` throughput for 1,000 `info` requests, start-up included (target: >= 2,000
   responses/s), with the default jobs (one worker per core) and with `--jobs 1`, measured in the
   same run: on CT_small.dcm repeated, and on 1,000 distinct files of a real CT header (from
   /work/bench/a3000 by default; `--files DIR` for another tree, `--files ''` to skip).

Both sides run from bytecode (the first, untimed runs write dicom-hub's, as installing a package
does). Inputs are real paths: the sample is resolved once here (`contract.files.resolve_sample` finds
pydicom's test data without importing pydicom), so the bare pydicom peer reads the same path.
Runs are interleaved, median of several repetitions; CPU seconds are user+sys of the process and
its workers. The load averages are printed: on a loaded machine compare the same-run ratios.
Usage: .venv/bin/python scripts/bench/bench_startup.py [--repeat 15] [--requests 1000] [--stream-repeat 3] [--jobs N] [--files DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import dicom_hub_exe, report, time_command
from dicom_hub.contract.files import resolve_sample

DEFAULT_FILES = Path("/work/bench/a3000")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--stream-repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="--jobs of the parallel stream (default: dicom-hub's, one per core)")
    parser.add_argument("--files", default=str(DEFAULT_FILES), help="a tree of DICOM files for the distinct-files stream ('' to skip)")
    args = parser.parse_args()
    print(f"load average at start: {_load()}")
    # Both sides load their modules from bytecode, as any installed package does (pydicom's is in
    # site-packages; an editable checkout with PYTHONDONTWRITEBYTECODE=1 would compile every start).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sample = str(resolve_sample("CT_small.dcm"))
    ours_cmd = [dicom_hub_exe(), "run", "--op", "info", "--input", sample]
    bare_cmd = [sys.executable, "-c", "import sys, pydicom; pydicom.dcmread(sys.argv[1])", sample]
    for warm_up in (ours_cmd, bare_cmd, [dicom_hub_exe(), "run", "--stream", "--jobs", "2"]):
        subprocess.run(warm_up, input=json.dumps({"op": "info", "input": sample}).encode(), capture_output=True, check=True)
    ours_wall, ours_cpu, bare_wall, bare_cpu = [], [], [], []
    for _ in range(args.repeat):  # interleaved, so background load hits both alike
        w, c = time_command(ours_cmd)
        ours_wall.append(w)
        ours_cpu.append(c)
        w, c = time_command(bare_cmd)
        bare_wall.append(w)
        bare_cpu.append(c)
    report("info start-up, wall seconds", _median(ours_wall), _median(bare_wall), "ratio <= 1.5")
    report("info start-up, CPU seconds", _median(ours_cpu), _median(bare_cpu), "ratio <= 1.5")

    inputs = {f"CT_small.dcm x {args.requests}": [sample] * args.requests}
    distinct = _distinct_files(Path(args.files), args.requests) if args.files else []
    if distinct:
        inputs[f"{len(distinct)} distinct files of {args.files}"] = distinct
    all_ok = True
    for label, paths in inputs.items():
        all_ok = _stream_report(label, paths, args) and all_ok
    print(f"load average at end: {_load()}")
    return 0 if all_ok else 1


def _stream_report(label: str, paths: list[str], args: argparse.Namespace) -> bool:
    lines = "".join(json.dumps({"op": "info", "input": path, "id": i}) + "\n" for i, path in enumerate(paths)).encode()
    parallel = ["--jobs", str(args.jobs)] if args.jobs else []
    runs: dict[str, list[tuple[float, float, float, float]]] = {"parallel": [], "serial": []}
    all_ok = True
    for _ in range(args.stream_repeat):  # interleaved, like the start-up runs
        for name, extra in (("parallel", parallel), ("serial", ["--jobs", "1"])):
            *numbers, ok = _stream_rate(lines, extra, len(paths))
            runs[name].append(tuple(numbers))
            all_ok = all_ok and ok
    (fast, fast_steady, fast_first, fast_cpu), (slow, slow_steady, slow_first, slow_cpu) = (
        tuple(_median([run[i] for run in runs[name]]) for i in range(4)) for name in ("parallel", "serial")
    )
    print(f"stream, {label}:")
    print(f"  {' '.join(parallel) or 'default jobs'}: {fast:.0f} responses/s with start-up (target: >= 2000); first response after {fast_first * 1000:.0f} ms, then {fast_steady:.0f}/s; {fast_cpu:.2f} CPU s")
    print(f"  --jobs 1: {slow:.0f} responses/s with start-up; first response after {slow_first * 1000:.0f} ms, then {slow_steady:.0f}/s; {slow_cpu:.2f} CPU s")
    print(f"  parallel/serial ratio: {fast / slow:.2f} with start-up, {fast_steady / slow_steady:.2f} after the first response")
    if not all_ok:
        print("  NOT every response was ok")
    return all_ok


def _stream_rate(lines: bytes, extra: list[str], requests: int) -> tuple[float, float, float, float, bool]:
    """(responses per second with start-up, after the first response, seconds to the first
    response, CPU seconds, every response ok) of one `run --stream` over `lines`."""
    with tempfile.TemporaryFile() as stdin:
        stdin.write(lines)
        stdin.seek(0)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen([dicom_hub_exe(), "run", "--stream", *extra], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_at = time.perf_counter()
        rest = proc.stdout.read()
        proc.wait()
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    answered = sum(1 for line in [first, *rest.splitlines()] if line and json.loads(line)["ok"])
    return answered / seconds, (answered - 1) / (seconds - first_at + start), first_at - start, cpu, answered == requests


def _distinct_files(root: Path, count: int) -> list[str]:
    """`count` files of the tree, spread over it (sorted, every n-th), or none if it is smaller."""
    if not root.is_dir():
        print(f"(no {root}: the distinct-files stream is skipped; make it with scripts/bench/make_archive.py)")
        return []
    files = sorted(str(p) for p in root.rglob("*") if p.is_file())
    if len(files) < count:
        print(f"({root} holds {len(files)} files, fewer than {count}: the distinct-files stream is skipped)")
        return []
    step = len(files) // count
    return files[::step][:count]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
