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
    rates: dict[str, list[float]] = {"parallel": [], "serial": []}
    all_ok = True
    for _ in range(args.stream_repeat):  # interleaved, like the start-up runs
        for name, extra in (("parallel", parallel), ("serial", ["--jobs", "1"])):
            rate, ok = _stream_rate(lines, extra, args.requests)
            rates[name].append(rate)
            all_ok = all_ok and ok
    fast, slow = med(rates["parallel"]), med(rates["serial"])
    print(f"stream ({' '.join(parallel) or 'default jobs'}): {fast:.0f} responses/s (target: >= 2000)")
    print(f"stream --jobs 1 (serial path): {slow:.0f} responses/s; parallel/serial ratio {fast / slow:.2f}")
    return 0 if all_ok else 1


def _stream_rate(lines: bytes, extra: list[str], requests: int) -> tuple[float, bool]:
    """(responses per second, every response ok) of one `run --stream` over `lines`, start-up included."""
    start = time.perf_counter()
    result = subprocess.run([dicom_hub_exe(), "run", "--stream", *extra], input=lines, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    answered = sum(1 for line in result.stdout.splitlines() if json.loads(line)["ok"])
    return answered / seconds, answered == requests

if __name__ == "__main__":
    sys.exit(main())
