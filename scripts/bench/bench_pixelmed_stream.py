"""PixelMed `info` in one `dicom-hub run --stream` session: the long-lived PixelMed host vs one JVM
per request (the old path, DICOM_HUB_PIXELMED_HOST=0), in the same run.

Each request is sent and its response line read before the next (what a client of the stream
sees); the first requests warm up (JVM start, class loading, JIT) and are reported apart. Next to
wall time, the CPU time of the whole process tree (dicom-hub and its JVMs, from /proc) per request:
on a busy machine the wall time mostly measures the wait for a core.

    .venv/bin/python scripts/bench/bench_pixelmed_stream.py [--repeat 200] [--warmup 20] [--input sample:CT_small.dcm]

Target (issue 21): the host <= 20 ms per request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import dicom_hub_exe


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (Linux /proc; 0 elsewhere), plus what
    its waited-for children used (the one-shot JVMs)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK") + sum(tree_cpu_seconds(child) for child in children)


def stream_times(requests: int, warmup: int, line: str, env: dict[str, str]) -> tuple[list[float], list[float], float]:
    """(warm-up times, measured times, CPU seconds of the measured part), one request at a time through one stream."""
    proc = subprocess.Popen([dicom_hub_exe(), "run", "--stream"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    times, cpu = [], 0.0
    try:
        for index in range(warmup + requests):
            if index == warmup:
                cpu = tree_cpu_seconds(proc.pid)
            start = time.perf_counter()
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            response = json.loads(proc.stdout.readline())
            times.append(time.perf_counter() - start)
            if not response["ok"]:
                raise SystemExit(f"info failed: {response['error']}")
        cpu = tree_cpu_seconds(proc.pid) - cpu
    finally:
        proc.stdin.close()
        proc.wait()
    return times[:warmup], times[warmup:], cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="measured requests through the host")
    parser.add_argument("--one-shot-repeat", type=int, default=10, help="measured requests with one JVM each")
    parser.add_argument("--warmup", type=int, default=20, help="requests before measuring (JIT warm-up)")
    parser.add_argument("--input", default="sample:CT_small.dcm")
    args = parser.parse_args()
    line = json.dumps({"op": "info", "backend": "pixelmed", "input": args.input})
    paths = {
        "host": ({**os.environ, "DICOM_HUB_PIXELMED_HOST": "1"}, args.repeat),
        "one JVM/request": ({**os.environ, "DICOM_HUB_PIXELMED_HOST": "0"}, args.one_shot_repeat),
    }
    medians = {}
    print(f"pixelmed info, {args.input}, through one `dicom-hub run --stream` each")
    for label, (env, repeat) in paths.items():
        warm, measured, cpu = stream_times(repeat, args.warmup, line, env)
        medians[label] = statistics.median(measured)
        print(
            f"{label:<16} median {medians[label] * 1000:7.1f} ms/request, mean {statistics.mean(measured) * 1000:7.1f} ms, "
            f"CPU {cpu / len(measured) * 1000:7.1f} ms/request "
            f"({len(measured)} requests after {len(warm)} warm-up, the first: {', '.join(f'{t * 1000:.0f}' for t in warm[:5])} ms)"
        )
    ratio = medians["one JVM/request"] / medians["host"]
    print(f"one JVM/request / host: x{ratio:.1f} (target: host <= 20 ms/request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
