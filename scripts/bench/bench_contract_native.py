"""Contract-native backends: what a request costs through a subprocess, and C# (GDCM) vs Python.

Runs the same requests, in the same run, through
  python      the in-process Python backend (the reference),
  pyproc      the Python backend as a contract-native program, kept alive (--stream),
  pyproc-1    the same program started once per request (the one-shot protocol),
  csharp      the C# backend (Mono + GDCM), kept alive (--stream),
  csharp-1    the C# program started once per request,
and prints the mean time per request and the ratio to the in-process backend.

    .venv/bin/python scripts/bench/bench_contract_native.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ["DICOM_HUB_BACKENDS"] = f"pyproc={sys.executable} -m dicom_hub.python_backend"
    from dicom_hub.adapters.dispatch import dispatch
    from dicom_hub.adapters.registry import get_adapter
    from dicom_hub.contract.files import resolve_sample

    ct = str(resolve_sample("CT_small.dcm"))
    out = Path(tempfile.mkdtemp(prefix="bench-contract-"))
    requests = {
        "info": {"op": "info", "input": ct},
        "stats": {"op": "stats", "input": ct},
        "transcode j2k": {"op": "transcode", "input": ct, "output": str(out / "o.dcm"), "options": {"transfer_syntax": "j2k", "overwrite": True}},
        "to_image": {"op": "to_image", "input": ct, "output": str(out / "o.png"), "options": {"overwrite": True}},
    }
    one_shot = {"pyproc-1": [sys.executable, "-m", "dicom_hub.python_backend"]}
    csharp = get_adapter("csharp")
    backends = ["python", "pyproc"]
    if csharp.available():
        backends.append("csharp")
        one_shot["csharp-1"] = csharp.command()
    else:
        print(f"csharp unavailable ({csharp.availability.reason}); measuring Python only", file=sys.stderr)
    print(f"{'request':<15} " + " ".join(f"{b:>16}" for b in [*backends, *one_shot]))
    for label, request in requests.items():
        times = {}
        for backend in backends:
            check = dispatch({**request, "backend": backend})
            assert check.ok, (backend, check.error)
            times[backend] = _mean(lambda r={**request, "backend": backend}: dispatch(r), args.repeat)
        for name, argv in one_shot.items():
            text = json.dumps(request)
            times[name] = _mean(lambda a=argv, t=text: subprocess.run(a, input=t, capture_output=True, text=True, check=True), max(3, args.repeat // 4))
        base = times["python"]
        print(f"{label:<15} " + " ".join(f"{t * 1000:8.1f}ms x{t / base:5.1f}" for t in times.values()))
    return 0


def _mean(call, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        call()
    return (time.perf_counter() - start) / repeat


if __name__ == "__main__":
    sys.exit(main())
