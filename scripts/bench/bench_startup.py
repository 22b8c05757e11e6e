"""Start-up and streaming speed of `dicom-hub run`.

1. `dicom-hub run --op info` on sample:CT_small.dcm against a bare `python -c` that imports
   pydicom and reads the same file (target: ratio <= 1.5).
2. `dicom-hub run --stream` throughput for 1,000 `info` requests (target: >= 500 responses/s).

Both are measured in the same run, interleaved, median of several repetitions.
Usage: .venv/bin/python scripts/bench/bench_startup.py [--repeat 15] [--requests 1000]
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
    start = time.perf_counter()
    result = subprocess.run([dicom_hub_exe(), "run", "--stream"], input=lines, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    answered = sum(1 for line in result.stdout.splitlines() if json.loads(line)["ok"])
    rate = answered / seconds
    print(f"stream: {answered}/{args.requests} ok in {seconds:.2f} s = {rate:.0f} responses/s (target: >= 500)")
    return 0 if answered == args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
