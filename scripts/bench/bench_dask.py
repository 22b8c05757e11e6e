#!/usr/bin/env python3
"""Benchmark: the batch ops on the local process pool against the same requests on a Dask cluster
on this machine (`options.executor = "dask"`), for `extract_metadata` and `batch_anonymize`.

    .venv/bin/python scripts/bench/make_archive.py /tmp/archive --files 20000
    .venv/bin/python scripts/bench/bench_dask.py /tmp/archive [--workers 2] [--files N] [--repeat N] [--skip-anonymize | --only OP]

Runs, each a separate `dicom-hub run` client process on the same archive (read once beforehand so
every run starts from a warm page cache):
- local: `workers` processes (the default executor);
- dask, 1 worker and `workers` workers: a `dask scheduler` and `dask worker` processes (one
  thread each, no nanny, all with `--preload dicom_hub.python_backend.batch.dask_preload` as the
  README advises) started here on 127.0.0.1 and stopped after; the client connects with
  `options.scheduler`, so the cluster's start-up is not counted (a real cluster is long-lived),
  and each cluster first runs the op once untimed on one folder (a long-lived cluster's workers
  have run jobs before: their first-task costs are paid);
- local and dask again on a smaller input (half the folders, or `--small`), to show the client's memory does not grow
  with the file count (every batch op streams its walk; the client holds a bounded window).
Both clusters run side by side, and the local, dask1 and dask2 runs are interleaved, each kind
first in turn, `--repeat N` times (the table keeps each kind's fastest run): on a shared machine
the load drifts between runs made one after the other.
`--files N` runs on the first top-level folders holding about N files instead of all of them;
`--small ARCHIVE` makes the memory comparison on that archive instead of half the folders.
Prints files/second for each, the CPU seconds per 1,000 files (the client and its children, plus
the Dask scheduler and workers: a fairer measure than wall time on a shared machine), the
overhead ratio dask/local with the same worker count (target <= 1.25 on one machine), the scaling
from 1 to `workers` workers (target >= 1.6x for 2), and the client's peak memory (its own process
only: neither the pool's nor the cluster's workers count) for each op on both sizes. The
client's peak includes the response, which for batch_anonymize lists every output file (a path
per file, then its JSON): that part grows with the files by design; the client's working memory
besides does not (tests/python_backend/batch/test_batch_dask.py measures it with tracemalloc).
Each run's CPU is split into the client's (with the local pool's workers), the scheduler's and
each worker's, with the kernel's share. Also the load average, as the machine may be shared, and
the kernel CPU one file creation costs before and after the runs (`creation_cost`: after many
files were deleted on a journal-less ext4 it is several times higher for some minutes, and so is
every run's).
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
SLOW_CREATION_US = 150  # `creation_cost` above this: the file system is in its after-deletes state
PRELOAD = "dicom_hub.python_backend.batch.dask_preload"


@dataclass
class Run:
    label: str
    files: int
    wall: float
    client_peak_mb: float
    cpu: float  # seconds: the client, its children, and the cluster's processes during the run
    client_cpu: float = 0.0  # the client and its children (the local pool's workers)
    scheduler_cpu: float = 0.0
    worker_cpu: tuple[float, ...] = ()
    system_cpu: float = 0.0  # the kernel's part of `cpu`

    def split(self) -> str:
        """Where the CPU went, in seconds: client (with its own pool), scheduler, each worker,
        and the kernel's share of it all."""
        text = f"client {self.client_cpu:.1f}"
        if self.worker_cpu:
            text += f", scheduler {self.scheduler_cpu:.1f}, workers " + " + ".join(f"{w:.1f}" for w in self.worker_cpu)
        return text + f"; system {100 * self.system_cpu / max(self.cpu, 1e-9):.0f}%"

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


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a running process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, IndexError, ValueError):
        return 0.0, 0.0


def creation_cost(folder: Path, files: int = 2000) -> float:
    """Kernel CPU (µs) to create, write and rename one small file here, as the batch ops do. On a
    journal-less ext4 it is several times higher for a few minutes after many files were deleted
    on the file system (new inodes step over recently deleted ones), which any run then pays:
    printed before and after, so a slow run can be told from a slow file system."""
    import resource

    folder.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for i in range(files):
        part = folder / f".{i:06d}.part"
        with open(part, "wb") as f:
            f.write(b"\0" * 4096)
        os.rename(part, folder / f"{i:06d}.dcm")
    return 1e6 * (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) / files


def run_client(label: str, request: dict, cluster: Cluster | None = None) -> tuple[Run, dict]:
    """One `dicom-hub run` client: wall time, its own peak RSS, CPU time, its response."""
    others = cluster.pids() if cluster is not None else []
    os.sync()  # no dirty pages of the previous run: it would throttle this one's writes
    before = [cpu_seconds(pid) for pid in others]
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dicom_hub.interface", "run"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request).encode())
        proc.stdin.close()
        peak = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        response = json.loads(out.read() or b"{}")
    client = usage.ru_utime + usage.ru_stime
    after = [cpu_seconds(pid) for pid in others]
    cluster_cpu = [sum(end) - sum(start) for start, end in zip(before, after, strict=True)]
    system = usage.ru_stime + sum(end[1] - start[1] for start, end in zip(before, after, strict=True))
    if not response.get("ok"):
        sys.exit(f"{label} failed: {response.get('error')}")
    meta = response["metadata"]
    files = meta.get("files_processed", 0) + meta.get("files_failed", 0)
    scheduler, workers = (cluster_cpu[0], tuple(cluster_cpu[1:])) if cluster_cpu else (0.0, ())
    return Run(label, files, wall, peak, client + sum(cluster_cpu), client, scheduler, workers, system), meta


class Cluster:
    """A scheduler and `n` workers on 127.0.0.1, started and stopped here."""

    def __init__(self, folder: Path, workers: int) -> None:
        dask = [sys.executable, "-m", "dask"]  # this interpreter (a script's shebang may name another)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        scheduler_file.unlink(missing_ok=True)
        self.processes = [
            subprocess.Popen(
                [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file), "--preload", PRELOAD],
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
                    [*dask, "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-nanny",
                     "--no-dashboard", "--name", f"w{i}", "--local-directory", str(folder), "--preload", PRELOAD],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(self.address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.processes]

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def warm(folders: list[Path]) -> int:
    """Read every file once (a warm page cache for every run); the number of files."""
    count = 0
    for top in folders:
        for folder, _, names in os.walk(top):
            for name in names:
                with open(os.path.join(folder, name), "rb") as f:
                    while f.read(1 << 20):
                        pass
                count += 1
    return count


def first_folders(archive: Path, files: int | None) -> list[Path]:
    """The archive's top-level folders, or the first of them holding about `files` files."""
    folders = sorted(p for p in archive.iterdir() if p.is_dir())
    if files is None:
        return folders
    chosen, count = [], 0
    for folder in folders:
        if count >= files:
            break
        chosen.append(folder)
        count += sum(len(names) for _, _, names in os.walk(folder))
    return chosen


def request(op: str, folders: list[Path], output: Path, options: dict) -> dict:
    source: str | list[str] = [str(p) for p in folders] if len(folders) > 1 else str(folders[0])
    return {"op": op, "input": source, "output": str(output), "options": {"progress": False, **options}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--files", type=int, default=None, help="use only the first top-level folders holding about this many files")
    parser.add_argument("--small", type=Path, default=None, help="a smaller archive for the client memory comparison (default: half the folders)")
    parser.add_argument("--skip-anonymize", action="store_true")
    parser.add_argument("--only", choices=["extract_metadata", "batch_anonymize"], help="run this op only")
    parser.add_argument("--chunk-files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind, interleaved; the table keeps each kind's fastest")
    args = parser.parse_args()
    archive = args.archive.resolve()
    tops = first_folders(archive, args.files)
    folders = [archive] if args.files is None else tops
    # The memory comparison: another (smaller) archive, one folder like the full run, else half
    # of the top-level folders (several input folders: the client then keeps every output name).
    half = [args.small.resolve()] if args.small else tops[: len(tops) // 2]
    total = warm(folders) + (warm(half) if args.small else 0)
    print(f"archive: {archive} ({total} files); load before: {os.getloadavg()}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench_dask_"))
    probe = creation_cost(work / "probe-before")
    print(f"file creation: {probe:.0f} µs of kernel CPU a file", flush=True)
    if probe > SLOW_CREATION_US:
        print(f"  (usually {SLOW_CREATION_US // 3}-{SLOW_CREATION_US // 2}: many files were deleted on this file system in the last minutes;"
              " for steady figures, rerun in 5 minutes, with no other deletes meanwhile)", flush=True)  # fmt: skip
    runs: dict[tuple[str, str], Run] = {}
    ops = [("extract_metadata", ".csv", {"chunk_files": args.chunk_files})]
    if not args.skip_anonymize:
        ops.append(("batch_anonymize", "", {"key": KEY}))
    ops = [op for op in ops if args.only in (None, op[0])]

    def measure(op: str, kind: str, parts: list[Path], ext: str, options: dict, cluster: Cluster | None = None) -> None:
        # Every output stays until the end: on an ext4 without a journal, creating files right after
        # many were deleted nearby costs up to ~1 ms more each (the inode allocator steps over
        # recently deleted inodes), which would charge one run for the run before it.
        out = work / f"{op}-{kind}-{len(list(work.iterdir()))}{ext}"
        run, _ = run_client(f"{op} {kind}", request(op, parts, out, options), cluster)
        best = runs.get((op, kind))
        if best is None or run.wall < best.wall:
            runs[(op, kind)] = run
        print(f"  {op} {kind}: {run.wall:.1f} s, {1000 * run.cpu / max(1, run.files):.2f} CPU s/1k ({run.split()}), load {os.getloadavg()[0]:.2f}", flush=True)

    clusters: dict[int, Cluster] = {}
    try:
        for n in sorted({1, args.workers}):
            clusters[n] = Cluster(work / f"cluster{n}", n)
        for op, ext, options in ops:
            local = {**options, "workers": args.workers}
            on = {n: {**options, "executor": "dask", "scheduler": cluster.address} for n, cluster in clusters.items()}
            for n in clusters:  # untimed: a long-lived cluster's workers have run jobs before
                warm_up = work / f"{op}-warm-up{n}{ext}"
                run_client(f"{op} warm-up", request(op, tops[:1], warm_up, on[n]))
            kinds = [("local", local, None), *((f"dask{n}", on[n], clusters[n]) for n in clusters)]
            for rep in range(args.repeat):  # each kind first in turn: the machine's load drifts
                turn = rep % len(kinds)
                for kind, kind_options, cluster in kinds[turn:] + kinds[:turn]:
                    measure(op, kind, folders, ext, kind_options, cluster)
            if half:
                measure(op, "local-half", half, ext, local)
                measure(op, "dask-half", half, ext, on[args.workers], clusters[args.workers])
        probe_after = creation_cost(work / "probe-after")
    finally:
        for cluster in clusters.values():
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'run':32s} {'files':>7s} {'wall s':>8s} {'files/s':>9s} {'CPU s/1k':>9s} {'client MB':>10s}")
    for (op, kind), run in runs.items():
        per_k = 1000 * run.cpu / run.files if run.files else 0.0
        print(f"{op + ' ' + kind:32s} {run.files:7d} {run.wall:8.2f} {run.rate:9.1f} {per_k:9.2f} {run.client_peak_mb:10.1f}   CPU s: {run.split()}")
    print()
    for op, _, _ in ops:
        local, dask_n, dask_1 = runs[(op, "local")], runs[(op, f"dask{args.workers}")], runs.get((op, "dask1"))
        overhead = dask_n.wall / local.wall
        print(f"{op}: overhead dask/local with {args.workers} workers = {overhead:.2f} wall, {dask_n.cpu / local.cpu:.2f} CPU (target <= 1.25)")
        if dask_1 is not None and args.workers > 1:
            print(f"{op}: scaling 1 -> {args.workers} workers = {dask_1.wall / dask_n.wall:.2f}x (target >= 1.6x for 2)")
        for kind in ("local", f"dask{args.workers}"):
            half_run = runs.get((op, "dask-half" if kind.startswith("dask") else "local-half"))
            full = runs[(op, kind)]
            if half_run is not None:
                print(f"{op}: client memory ({kind}) {half_run.client_peak_mb:.0f} MB for {half_run.files} files, {full.client_peak_mb:.0f} MB for {full.files} files")
    print(f"file creation after the runs: {probe_after:.0f} µs of kernel CPU a file")
    print(f"load after: {os.getloadavg()}; uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
