#!/usr/bin/env python3
"""Benchmark: `store` of a series into a real Orthanc against DCMTK `storescu` of the same files,
in the same run, against the same Orthanc (started here on 127.0.0.1, stopped at the end).

    .venv/bin/python scripts/bench/bench_store.py [SERIES_DIR] [--repeat N]

Prints files/second for `dicom-hub run --op store` (a new process, like storescu), for the op
called in-process, and for storescu, then the ratios storescu / ours (target: <= 1.5, i.e.
within 1.5x of storescu). Runs alternate between the tools; the best of N is kept. Orthanc
replaces instances it already has (OverwriteInstances), so every run does the same work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from _common import SHARED_CT, dicom_hub_exe  # noqa: E402
from peers import HOST, c_echo_ok, free_port, orthanc_config, orthanc_executable  # noqa: E402  (the test peer's config)


def start_orthanc(root: Path) -> tuple[subprocess.Popen, int]:
    exe = orthanc_executable() or sys.exit("Orthanc is not installed (apt-get install orthanc)")
    port = free_port()
    config = root / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(port, root, {}, None)))
    log = (root / "orthanc.log").open("wb")
    proc = subprocess.Popen([exe, "--no-jobs", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not c_echo_ok(HOST, port, "ORTHANC"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"Orthanc did not start; see {root / 'orthanc.log'}")
        time.sleep(0.2)
    return proc, port


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    run = subprocess.run(args, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"{Path(args[0]).name} failed (rc {run.returncode}): {run.stderr[-2000:]}")
    return elapsed


def store_in_process(series: Path, options: dict) -> float:
    from dicom_hub.adapters.dispatch import dispatch

    start = time.perf_counter()
    response = dispatch({"op": "store", "input": str(series), "options": options, "backend": "python"})
    elapsed = time.perf_counter() - start
    if not response.ok or response.metadata["failed"]:
        sys.exit(f"store failed: {response.error or response.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("series", nargs="?", type=Path, default=SHARED_CT)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each tool; the best is kept")
    args = parser.parse_args()
    files = sorted(str(p) for p in args.series.iterdir() if p.is_file())
    if not files:
        sys.exit(f"no files in {args.series}")
    storescu = shutil.which("storescu") or sys.exit("storescu (DCMTK) is not installed")
    for path in files:  # warm the page cache so neither tool pays for the first read
        Path(path).read_bytes()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        proc, port = start_orthanc(Path(tmp))
        try:
            options = {"host": HOST, "port": port, "called_aet": "ORTHANC"}
            cli = [dicom_hub_exe(), "run", "--op", "store", "--input", str(args.series), "--options", json.dumps(options)]
            dcmtk = [storescu, "-aet", "STORESCU", "-aec", "ORTHANC", HOST, str(port), *files]
            best = {"cli": float("inf"), "op": float("inf"), "storescu": float("inf")}
            for _ in range(args.repeat):
                best["storescu"] = min(best["storescu"], timed(dcmtk))
                best["cli"] = min(best["cli"], timed(cli))
                best["op"] = min(best["op"], store_in_process(args.series, options))
        finally:
            proc.terminate()
            proc.wait(30)
    count = len(files)
    print(f"{count} files from {args.series} into Orthanc on {HOST}, best of {args.repeat}:")
    for name, label in (("storescu", "DCMTK storescu"), ("cli", "dicom-hub run --op store"), ("op", "store op in-process")):
        print(f"  {label:26s} {best[name]:7.3f} s  {count / best[name]:7.1f} files/s")
    for name in ("cli", "op"):
        ratio = best[name] / best["storescu"]
        verdict = "within target" if ratio <= 1.5 else "SLOWER than target"
        print(f"ratio {name} time / storescu time: {ratio:.2f}x (target <= 1.5x): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
