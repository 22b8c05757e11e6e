"""No input can kill, hang or confuse dicom-hub (issue 15).

Corrupt files (fuzz_cases.py: truncations, byte flips, crafted headers) go through every op of
every backend that serves it, in a `dicom-hub run --stream` process per backend. For each
request: one schema-valid response within the timeout, never `internal_error` nor `timeout`, no
output file unless ok. Afterwards: only the ok outputs in the output folder (no temporary or
partial files) and no crash dumps. The process itself dying counts as a failure of that case.

CI setting: about two minutes on two cores. Longer runs (nightly):
    DICOM_HUB_FUZZ_CASES=3000 DICOM_HUB_FUZZ_SECONDS=1800 pytest tests/fuzz
DICOM_HUB_FUZZ_SEED changes the random cases; every failure prints its seed, case and mutation
and keeps the file (see `fuzz_cases.py --help` to rebuild one).
"""

from __future__ import annotations

import json
import os
import random
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import require_backend, response_validator
from fuzz_cases import GENERATED, Case, build_cases, bundled_sources

SEED = int(os.environ.get("DICOM_HUB_FUZZ_SEED", "15"))
CASES = os.environ.get("DICOM_HUB_FUZZ_CASES")
SECONDS = float(os.environ.get("DICOM_HUB_FUZZ_SECONDS", "0") or 0)
REQUEST_TIMEOUT = 120.0  # seconds without an answer = a hang
TOOL_TIMEOUT = 60  # options.timeout for the toolkits
OPS = ("info", "dump", "to_json", "validate", "stats", "histogram", "to_image", "transcode", "anonymize", "modify_tags")
OUTPUT_SUFFIX = {"to_json": ".json", "to_image": ".png", "transcode": ".dcm", "anonymize": ".dcm", "modify_tags": ".dcm"}
TARGETS = ("explicit", "implicit", "deflated", "rle", "jpegls", "j2k", "jpeg_lossless")
# Requests per backend, and the time bound, in the CI setting. PixelMed starts a JVM per request (~1 s).
REQUESTS = {"python": 260, "dcmtk": 110, "gdcm": 90, "csharp": 110, "dicom-rs": 90, "pixelmed": 22}
DEFAULT_SECONDS = {"python": 35, "dcmtk": 25, "gdcm": 20, "csharp": 20, "dicom-rs": 20, "pixelmed": 30}
CRASH_DUMPS = ("mono_crash*", "core", "core.*", "hs_err_pid*", "*.dmp")


@pytest.fixture(scope="session")
def fuzz_inputs(tmp_path_factory) -> tuple[Path, list[Case]]:
    """Every case written once as a file: bundled files and one generated per writable syntax."""
    from conftest import expect_ok

    folder = tmp_path_factory.mktemp("fuzz-inputs")
    sources = bundled_sources()
    for alias, source in GENERATED.items():
        out = folder / f"gen_{alias}.dcm"
        expect_ok({"op": "transcode", "input": f"sample:{source}", "output": str(out), "options": {"transfer_syntax": alias}})
        sources[out.name] = out.read_bytes()
    random_cases = max(int(CASES or 0), max(REQUESTS.values()))
    cases = build_cases(SEED, sources, random_cases)
    for case in cases:
        (folder / f"case_{case.index:05d}.dcm").write_bytes(case.data)
    return folder, cases


@dataclass
class Request:
    case: Case
    op: str
    options: dict[str, Any] = field(default_factory=dict)


def plan(backend: str, ops: list[str], cases: list[Case]) -> list[Request]:
    """Crafted cases x every op first (shuffled), then random cases with a random op, up to the count."""
    rng = random.Random(f"{SEED}-{backend}")
    count = int(CASES) if CASES else REQUESTS[backend]
    if CASES and backend == "pixelmed":
        count = max(count // 10, 10)
    crafted = [c for c in cases if not c.mutation.startswith(("truncation", "bytes set")) or c.mutation == "bytes set 1544=0x94"]
    pairs = [(c, op) for c in crafted for op in ops]
    rng.shuffle(pairs)
    chosen = pairs[: max(count // 2, min(len(ops), count))]
    randoms = [c for c in cases if c not in crafted]
    while len(chosen) < count and randoms:
        chosen.append((randoms[(len(chosen) * 7919 + SEED) % len(randoms)], rng.choice(ops)))
    requests = []
    for case, op in chosen:
        options: dict[str, Any] = {"timeout": TOOL_TIMEOUT} if backend != "python" else {}
        if op == "transcode":
            options["transfer_syntax"] = rng.choice(TARGETS)
        if op == "modify_tags":
            options["set"] = {"PatientName": "FUZZ^CASE"}
        requests.append(Request(case, op, options))
    return requests


class StreamProcess:
    """`dicom-hub run --stream`, asked one request at a time with a timeout; restarted if it dies."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        (workdir / "tmp").mkdir(exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.stderr = open(workdir / "stderr.log", "ab")  # noqa: SIM115 - closed in close()

    def _start(self) -> subprocess.Popen:
        env = {**os.environ, "TMPDIR": str(self.workdir / "tmp")}
        return subprocess.Popen(
            [sys.executable, "-m", "dicom_hub.interface", "run", "--stream"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, cwd=self.workdir, env=env,
        )  # fmt: skip

    def ask(self, request: dict[str, Any]) -> tuple[str | None, str]:
        """(response line, "") or (None, what went wrong)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None, f"the process died (exit {self.proc.wait()})"
        ready, _, _ = select.select([self.proc.stdout], [], [], REQUEST_TIMEOUT)
        if not ready:
            self._kill()
            return None, f"no response within {REQUEST_TIMEOUT:g} s (hang)"
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return None, f"the process died without a response (exit {code}{' = signal ' + str(-code) if code < 0 else ''})"
        return line.decode(errors="replace"), ""

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill()
        self.stderr.close()


def keep(source: Path, name: str) -> Path:
    """A failing case's file, copied where pytest's temporary-folder cleanup will not remove it."""
    import shutil
    import tempfile

    folder = Path(tempfile.gettempdir()) / "dicom-hub-fuzz-failures"
    folder.mkdir(exist_ok=True)
    return Path(shutil.copy(source, folder / name))


def check_response(line: str, request: dict[str, Any], output: Path | None) -> str | None:
    """What is wrong with one response, or None."""
    try:
        data = json.loads(line)
    except ValueError:
        return f"not one JSON line: {line[:200]!r}"
    errors = list(response_validator().iter_errors(data))
    if errors:
        return f"response violates the schema: {errors[0].message}"
    error = data.get("error") or {}
    if error.get("code") in ("internal_error", "timeout"):
        return f"{error['code']}: {error.get('message', '')[:400]}"
    if not data["ok"] and output is not None and output.exists():
        return f"failed ({error.get('code')}) but left {output.name} behind"
    if data["ok"] and output is not None and not output.exists():
        return f"ok but {output.name} was not written"
    return None


BACKENDS = list(REQUESTS)


@pytest.mark.toolkit
@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzzed_files_never_kill_hang_or_confuse(backend, fuzz_inputs, tmp_path):
    from dicom_hub.adapters.registry import get_adapter

    require_backend(backend)
    inputs, cases = fuzz_inputs
    adapter = get_adapter(backend)
    ops = [op for op in OPS if adapter.support(op) is not None]
    assert ops, f"{backend} serves none of {OPS}"
    out = tmp_path / "out"
    out.mkdir()
    stream = StreamProcess(tmp_path)
    budget = SECONDS or DEFAULT_SECONDS[backend]
    failures: list[str] = []
    written: set[Path] = set()
    start, asked = time.monotonic(), 0
    try:
        for n, item in enumerate(plan(backend, ops, cases)):
            if time.monotonic() - start > budget:
                break
            source = inputs / f"case_{item.case.index:05d}.dcm"
            output = out / f"{n:05d}_{item.op}{OUTPUT_SUFFIX[item.op]}" if item.op in OUTPUT_SUFFIX else None
            request = {"id": n, "op": item.op, "backend": backend, "input": str(source), "options": item.options}
            if output is not None:
                request["output"] = str(output)
            line, problem = stream.ask(request)
            asked += 1
            problem = problem or check_response(line or "", request, output)
            if problem:
                kept = keep(source, f"seed{SEED}_case{item.case.index}_{backend}_{item.op}.dcm")
                failures.append(f"{item.case.describe(SEED)}; {backend} {item.op} {json.dumps(item.options)}: {problem}\n    file kept: {kept}")
            elif output is not None and output.exists():
                written.add(output)
        dumps = [p for pattern in CRASH_DUMPS for p in tmp_path.rglob(pattern)]
    finally:
        stream.close()
    leftovers = sorted(p.name for p in out.rglob("*") if p not in written)
    print(f"{backend}: {asked} requests in {time.monotonic() - start:.1f} s, {len(failures)} failures")
    assert not failures, f"{len(failures)} of {asked} fuzzed requests went wrong:\n" + "\n".join(failures[:30])
    assert asked >= min(len(ops), 5), f"only {asked} requests ran within {budget:g} s"
    assert not leftovers, f"files left in the output folder that no ok response wrote: {leftovers[:20]}"
    assert not dumps, f"crash dumps: {dumps[:10]}"


CLI_CASES = 6


def test_the_cli_process_survives_fuzzed_files(fuzz_inputs, tmp_path):
    """`dicom-hub run` (one request, one process) never dies by a signal and prints one response."""
    inputs, cases = fuzz_inputs
    rng = random.Random(SEED)
    picked = [c for c in cases if c.mutation in ("bytes set 1544=0x94", "3000 nested sequences appended")][:2]
    picked += rng.sample(cases, CLI_CASES)
    failures = []
    for n, case in enumerate(picked):
        op = ("stats", "to_image", "dump", "info")[n % 4]
        argv = [sys.executable, "-m", "dicom_hub.interface", "run", "--op", op, "--input", str(inputs / f"case_{case.index:05d}.dcm")]
        if op == "to_image":
            argv += ["--output", str(tmp_path / f"{n}.png")]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=REQUEST_TIMEOUT, cwd=tmp_path)
        lines = run.stdout.splitlines()
        if run.returncode < 0 or run.returncode > 2:
            failures.append(f"{case.describe(SEED)}; {op}: exit {run.returncode}: {run.stderr[-500:]}")
        elif len(lines) != 1:
            failures.append(f"{case.describe(SEED)}; {op}: {len(lines)} lines on stdout")
        else:
            problem = check_response(lines[0], {}, None)
            if problem:
                failures.append(f"{case.describe(SEED)}; {op}: {problem}")
    assert not failures, "\n".join(failures)
