"""PixelMed `info` in one `dicom-hub run --stream` session: the long-lived PixelMed host vs one JVM
per request (the old path, DICOM_HUB_PIXELMED_HOST=0), in the same run.

Each request is sent and its response line read before the next (what a client of the stream
sees); the first requests warm up (JVM start, class loading, JIT) and are reported apart.

    .venv/bin/python scripts/bench/bench_pixelmed_stream.py [--repeat 50] [--input sample:CT_small.dcm]

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

from _common import dicom_hub_exe


def stream_times(requests: int, warmup: int, line: str, env: dict[str, str]) -> tuple[list[float], list[float]]:
    """(warm-up times, measured times) in seconds, one request at a time through one stream."""
    proc = subprocess.Popen([dicom_hub_exe(), "run", "--stream"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    times = []
    try:
        for _ in range(warmup + requests):
            start = time.perf_counter()
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            response = json.loads(proc.stdout.readline())
            times.append(time.perf_counter() - start)
            if not response["ok"]:
                raise SystemExit(f"info failed: {response['error']}")
    finally:
        proc.stdin.close()
        proc.wait()
    return times[:warmup], times[warmup:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="measured requests through the host")
    parser.add_argument("--one-shot-repeat", type=int, default=10, help="measured requests with one JVM each")
    parser.add_argument("--warmup", type=int, default=3)
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
        warm, measured = stream_times(repeat, args.warmup, line, env)
        medians[label] = statistics.median(measured)
        print(
            f"{label:<16} median {medians[label] * 1000:7.1f} ms/request, mean {statistics.mean(measured) * 1000:7.1f} ms "
            f"({len(measured)} requests; first {args.warmup} warm-up: {', '.join(f'{t * 1000:.0f}' for t in warm)} ms)"
        )
    ratio = medians["one JVM/request"] / medians["host"]
    print(f"one JVM/request / host: x{ratio:.1f} (target: host <= 20 ms/request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
