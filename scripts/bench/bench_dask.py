#!/usr/bin/env python3
"""Benchmark: the batch ops on the local process pool against the same requests on a Dask cluster
on this machine (`options.executor = "dask"`), for `extract_metadata` and `batch_anonymize`.

    .venv/bin/python scripts/bench/make_archive.py /tmp/archive --files 20000
    .venv/bin/python scripts/bench/bench_dask.py /tmp/archive [--workers 2] [--skip-anonymize]

Runs, each a separate `dicom-hub run` client process on the same archive (read once beforehand so
every run starts from a warm page cache):
- local: `workers` processes (the default executor);
- dask, 1 worker and `workers` workers: a `dask scheduler` and `dask worker` processes (one
  thread each, no nanny) started here on 127.0.0.1 and stopped after; the client connects with
  `options.scheduler`, so the cluster's start-up is not counted (a real cluster is long-lived);
- dask again on half the archive, to show the client's memory does not grow with the file count.
Prints files/second for each, the overhead ratio dask/local with the same worker count (target
<= 1.25 on one machine), the scaling from 1 to `workers` workers (target >= 1.6x for 2), and the
client's peak memory (its own process only: the workers are not its children). Also `uptime`, as
the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

KEY = "bench-dask-key-0123456789abcdef"


@dataclass
class Run:
    label: str
    files: int
    wall: float
    client_peak_mb: float

    @property
    def rate(self) -> float:
        return self.files / self.wall if self.wall else 0.0


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_client(label: str, request: dict) -> tuple[Run, dict]:
    """One `dicom-hub run` client: wall time, its own peak RSS, its response."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dicom_hub.interface", "run"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - start
        out.seek(0)
        response = json.loads(out.read() or b"{}")
    if not response.get("ok"):
        sys.exit(f"{label} failed: {response.get('error')}")
    meta = response["metadata"]
    return Run(label, meta.get("files_processed", 0) + meta.get("files_failed", 0), wall, peak), meta


class Cluster:
    """A scheduler and `n` workers on 127.0.0.1, started and stopped here."""

    def __init__(self, folder: Path, workers: int) -> None:
        dask = str(Path(sys.executable).parent / "dask")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        self.processes = [
            subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
            )
        ]  # fmt: skip
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("the Dask scheduler did not start")
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            self.processes.append(
                subprocess.Popen(
                    [dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                     "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def warm(archive: Path) -> int:
    count = 0
    for folder, _, names in os.walk(archive):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                while f.read(1 << 20):
                    pass
            count += 1
    return count


def request(op: str, source: Path, output: Path, options: dict) -> dict:
    return {"op": op, "input": str(source), "output": str(output), "options": {"progress": False, **options}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-anonymize", action="store_true")
    parser.add_argument("--chunk-files", type=int, default=1000)
    args = parser.parse_args()
    archive = args.archive.resolve()
    total = warm(archive)
    half = sorted(p for p in archive.iterdir() if p.is_dir())
    half = half[: len(half) // 2]
    print(f"archive: {archive} ({total} files); load before: {os.getloadavg()}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    runs: dict[tuple[str, str], Run] = {}
    ops = [("extract_metadata", ".csv", {"chunk_files": args.chunk_files})]
    if not args.skip_anonymize:
        ops.append(("batch_anonymize", "", {"key": KEY}))
    try:
        for op, ext, options in ops:
            out = work / f"{op}-local{ext}"
            runs[(op, "local")], _ = run_client(f"{op} local", request(op, archive, out, {**options, "workers": args.workers}))
            _clean(out)
            for n in sorted({1, args.workers}):
                cluster = Cluster(work / f"cluster{n}", n)
                try:
                    dask_options = {**options, "executor": "dask", "scheduler": cluster.address}
                    out = work / f"{op}-dask{n}{ext}"
                    runs[(op, f"dask{n}")], _ = run_client(f"{op} dask {n}", request(op, archive, out, dask_options))
                    _clean(out)
                    if n == args.workers and op == "extract_metadata" and half:
                        # Client memory against the file count: the same run on half the patients.
                        parts = [str(p) for p in half]
                        req = request(op, archive, work / f"half{ext}", dask_options)
                        req["input"] = parts
                        runs[(op, "dask-half")], _ = run_client(f"{op} dask half", req)
                        _clean(work / f"half{ext}")
                finally:
                    cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'run':32s} {'files':>7s} {'wall s':>8s} {'files/s':>9s} {'client MB':>10s}")
    for (op, kind), run in runs.items():
        print(f"{op + ' ' + kind:32s} {run.files:7d} {run.wall:8.2f} {run.rate:9.1f} {run.client_peak_mb:10.1f}")
    print()
    for op, _, _ in ops:
        local, dask_n, dask_1 = runs[(op, "local")], runs[(op, f"dask{args.workers}")], runs.get((op, "dask1"))
        overhead = dask_n.wall / local.wall
        print(f"{op}: overhead dask/local with {args.workers} workers = {overhead:.2f} (target <= 1.25)")
        if dask_1 is not None and args.workers > 1:
            print(f"{op}: scaling 1 -> {args.workers} workers = {dask_1.wall / dask_n.wall:.2f}x (target >= 1.6x for 2)")
    half_run = runs.get(("extract_metadata", "dask-half"))
    if half_run is not None:
        full = runs[("extract_metadata", f"dask{args.workers}")]
        print(f"client memory: {half_run.client_peak_mb:.0f} MB for {half_run.files} files, {full.client_peak_mb:.0f} MB for {full.files} files")
    print(f"load after: {os.getloadavg()}; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def _clean(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
