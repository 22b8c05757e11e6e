"""Start-up and streaming speed of `dicom-hub run`.

1. `dicom-hub run --op info` on sample:CT_small.dcm against a bare `python -c` that imports
   pydicom and reads the same file (target: ratio <= 1.5).
2. `dicom-hub run --stream` throughput for 1,000 `info` requests, start-up included (target: >= 2,000
   responses/s), against the serial path (`--jobs 1`) measured in the same run.

Both are measured in the same run, interleaved, median of several repetitions.
Usage: .venv/bin/python scripts/bench/bench_startup.py [--repeat 15] [--requests 1000] [--stream-repeat 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from _common import dicom_hub_exe, report, time_command
from dicom_hub.contract.files import resolve_sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--stream-repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="--jobs of the parallel stream (default: dicom-hub's, one per core)")
    args = parser.parse_args()
    sample = str(resolve_sample("CT_small.dcm"))
    ours_cmd = [dicom_hub_exe(), "run", "--op", "info", "--input", sample]
    bare_cmd = [sys.executable, "-c", "import sys, pydicom; pydicom.dcmread(sys.argv[1])", sample]
    ours_wall, ours_cpu, bare_wall, bare_cpu = [], [], [], []
    for _ in range(args.repeat):  # interleaved, so background load hits both alike
        w, c = time_command(ours_cmd)
        ours_wall.append(w)
        ours_cpu.append(c)
        w, c = time_command(bare_cmd)
        bare_wall.append(w)
        bare_cpu.append(c)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    report("info start-up, wall seconds", med(ours_wall), med(bare_wall), "ratio <= 1.5")
    report("info start-up, CPU seconds", med(ours_cpu), med(bare_cpu), "ratio <= 1.5")

    lines = "".join(json.dumps({"op": "info", "input": sample, "id": i}) + "\n" for i in range(args.requests)).encode()
    parallel = ["--jobs", str(args.jobs)] if args.jobs else []
    rates: dict[str, list[tuple[float, float]]] = {"parallel": [], "serial": []}
    all_ok = True
    for _ in range(args.stream_repeat):  # interleaved, like the start-up runs
        for name, extra in (("parallel", parallel), ("serial", ["--jobs", "1"])):
            rate, steady, ok = _stream_rate(lines, extra, args.requests)
            rates[name].append((rate, steady))
            all_ok = all_ok and ok
    fast, slow = (med([r for r, _ in rates[name]]) for name in ("parallel", "serial"))
    fast_steady, slow_steady = (med([s for _, s in rates[name]]) for name in ("parallel", "serial"))
    print(f"stream ({' '.join(parallel) or 'default jobs'}): {fast:.0f} responses/s with start-up (target: >= 2000); {fast_steady:.0f}/s after the first response")
    print(f"stream --jobs 1 (serial path): {slow:.0f} responses/s with start-up; {slow_steady:.0f}/s after the first response")
    print(f"parallel/serial ratio: {fast / slow:.2f} with start-up, {fast_steady / slow_steady:.2f} after the first response")
    return 0 if all_ok else 1


def _stream_rate(lines: bytes, extra: list[str], requests: int) -> tuple[float, float, bool]:
    """(responses per second with start-up, after the first response, every response ok) of one
    `run --stream` over `lines`."""
    with tempfile.TemporaryFile() as stdin:
        stdin.write(lines)
        stdin.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen([dicom_hub_exe(), "run", "--stream", *extra], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_at = time.perf_counter()
        rest = proc.stdout.read()
        proc.wait()
        seconds = time.perf_counter() - start
    answered = sum(1 for line in [first, *rest.splitlines()] if line and json.loads(line)["ok"])
    return answered / seconds, (answered - 1) / (seconds - first_at + start), answered == requests

if __name__ == "__main__":
    sys.exit(main())
