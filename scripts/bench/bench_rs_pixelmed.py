"""What the dicom-rs and PixelMed adapters add on top of their tools, measured in the same run:
N `info` requests to each backend, in-process through `dispatch` and end to end through
`dicom-hub run --stream` (CLI start-up included), against running the same tool command line
(the adapter's own argv) N times directly.

    .venv/bin/python scripts/bench/bench_rs_pixelmed.py [--requests 50] [--jvm-requests 10]

Prints wall times per request and the ratios dispatch / bare and stream / bare for each backend
(target for dispatch: <= 1.2; PixelMed's JVM start-up dominates its numbers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bare(argv: list[str], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def through_hub(hub: str, backend: str, path: Path, count: int) -> float:
    request = json.dumps({"op": "info", "input": str(path), "backend": backend})
    start = time.perf_counter()
    done = subprocess.run([hub, "run", "--stream"], input=(request + "\n") * count, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    responses = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    failed = [r for r in responses if not r["ok"]]
    if len(responses) != count or failed:
        sys.exit(f"{backend}: {len(responses)} of {count} answered, {len(failed)} failed: {failed[:1] or done.stderr[-500:]}")
    return elapsed


def in_process(backend: str, path: Path, count: int) -> float:
    from dicom_hub.adapters.dispatch import dispatch

    request = {"op": "info", "input": str(path), "backend": backend}
    dispatch(request)  # warm-up: imports and the availability probe happen once per process
    start = time.perf_counter()
    for _ in range(count):
        response = dispatch(request)
        if not response.ok:
            sys.exit(f"{backend}: {response.error}")
    return time.perf_counter() - start


def adapter_argv(backend: str, path: Path, scratch: Path) -> list[str]:
    """The command line the adapter itself runs for `info` (so both sides do the same work)."""
    from dicom_hub.adapters.registry import get_adapter
    from dicom_hub.contract.catalog import get_op
    from dicom_hub.contract.job import Job

    adapter = get_adapter(backend)
    if not adapter.available():
        sys.exit(f"{backend} is not available: {adapter.availability.reason}")
    job = Job(op="info", inputs=(path,), output=None, defaults=get_op("info").defaults)
    return adapter._build_cmd(job, scratch / "info.json")


def main() -> int:
    from _common import dicom_hub_exe
    from dicom_hub.contract.files import resolve_sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--jvm-requests", type=int, default=10)
    args = parser.parse_args()
    path = resolve_sample("CT_small.dcm").absolute()
    hub = dicom_hub_exe()
    with tempfile.TemporaryDirectory() as scratch:
        for backend, count, target in (("dicom-rs", args.requests, 1.2), ("pixelmed", args.jvm_requests, 1.2)):
            argv = adapter_argv(backend, path, Path(scratch))
            bare(argv, 2)  # warm caches
            t_bare = bare(argv, count)
            t_dispatch = in_process(backend, path, count)
            t_hub = through_hub(hub, backend, path, count)
            ms = 1000 / count
            print(f"{backend} info x{count}: bare {t_bare * ms:.1f} ms/req, dispatch {t_dispatch * ms:.1f} ms/req "
                  f"(ratio {t_dispatch / t_bare:.2f}, target <= {target}), stream {t_hub * ms:.1f} ms/req (ratio {t_hub / t_bare:.2f})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())
