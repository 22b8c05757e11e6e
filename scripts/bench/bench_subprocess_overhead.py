"""Per-request overhead of the subprocess adapters: `dicom-hub run --stream` sending N `dump`
requests through backend dcmtk, against running `dcmdump` N times directly, in the same run.

    .venv/bin/python scripts/bench/bench_subprocess_overhead.py [--requests 200] [--input PATH]

Prints both wall times, the added cost per request in ms (target: <= 10 ms) and the ratio.
Both sides run the same dcmdump command line (the adapter's own flags). The two are measured in
alternating rounds and the fastest round of each counts, so load from other processes on a
shared machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def child_cpu() -> float:
    """CPU seconds used so far by waited-for children and their children (dcmdump under dicom-hub)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bare(argv: list[str], count: int) -> tuple[float, float]:
    """The tool alone, its output read through a pipe as any caller must (dcmdump flushes every
    line, so writing into a pipe costs it far more than writing into /dev/null)."""
    start, cpu = time.perf_counter(), child_cpu()
    for _ in range(count):
        subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start, child_cpu() - cpu


def through_hub(hub: str, path: Path, count: int) -> tuple[float, float]:
    request = json.dumps({"op": "dump", "input": str(path), "backend": "dcmtk"})
    payload = (request + "\n") * count
    start, cpu = time.perf_counter(), child_cpu()
    done = subprocess.run([hub, "run", "--stream"], input=payload, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start, child_cpu() - cpu
    responses = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    failed = [r for r in responses if not r["ok"]]
    if len(responses) != count or failed:
        sys.exit(f"dicom-hub answered {len(responses)} of {count} requests, {len(failed)} failed: {failed[:1] or done.stderr[-500:]}")
    return elapsed


def main() -> int:
    from _common import dicom_hub_exe
    from dicom_hub.adapters.dcmtk.adapter import DUMP_FLAGS
    from dicom_hub.contract.files import resolve_sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--input", type=Path, default=None, help="DICOM file (default: pydicom's CT_small.dcm)")
    args = parser.parse_args()
    path = (args.input or resolve_sample("CT_small.dcm")).absolute()
    dcmdump, hub = shutil.which("dcmdump"), dicom_hub_exe()
    if not dcmdump:
        sys.exit("needs dcmdump (apt-get install dcmtk)")
    count = args.requests
    bare([dcmdump, *DUMP_FLAGS, str(path)], 5)  # warm the page cache
    bare_runs = []
    hub_runs = []
    for _ in range(args.rounds):
        bare_runs.append(bare([dcmdump, *DUMP_FLAGS, str(path)], count))
        hub_runs.append(through_hub(hub, path, count))
    (t_bare, c_bare), (t_hub, c_hub) = min(bare_runs), min(hub_runs)
    added = (t_hub - t_bare) / count * 1000
    added_cpu = (min(c for _, c in hub_runs) - min(c for _, c in bare_runs)) / count * 1000
    print(f"input: {path} ({path.stat().st_size} bytes), {count} requests, best of {args.rounds} alternating rounds")
    print(f"dcmdump directly        : {t_bare:7.3f} s wall, {c_bare:6.3f} s CPU ({t_bare / count * 1000:6.2f} ms/request)")
    print(f"dicom-hub --stream dcmtk: {t_hub:7.3f} s wall, {c_hub:6.3f} s CPU ({t_hub / count * 1000:6.2f} ms/request, start-up included)")
    print(f"added cost per request  : {added:6.2f} ms wall, {added_cpu:6.2f} ms CPU (target <= 10 ms) -> {'OK' if added <= 10 else 'OVER TARGET'}")
    print(f"ratio hub/bare          : {t_hub / t_bare:5.2f}x wall, {c_hub / c_bare:5.2f}x CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
