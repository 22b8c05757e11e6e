"""`dicom-hub run --stream` with worker processes (`--jobs`, `--unordered`): every line answered
exactly once, answers identical to the serial path's, a crashed worker answers its request with a
typed error, no worker outlives the parent, and stdin is read no faster than stdout is consumed.

Run as real subprocesses of the installed `dicom-hub` script (workers are forked from it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import require_backend, response_validator, sample
from peers import process_alive

HUB = [str(Path(sys.executable).with_name("dicom-hub")), "run", "--stream"]
CRASH_HOOK = "DICOM_HUB_TEST_WORKER_ABORT_LINE"  # stream_pool.CRASH_HOOK_ENV
CT = str(sample("CT_small.dcm"))


def _hub(args: list[str], stdin: bytes, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HUB, *args], input=stdin, capture_output=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=600)


def _responses(stdout: bytes) -> list[dict]:
    """Every stdout line as a response: valid UTF-8, standard JSON, schema-valid."""
    responses = []
    for line in stdout.splitlines():
        data = json.loads(line.decode("utf-8"), parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
        assert not list(response_validator().iter_errors(data)), data
        responses.append(data)
    return responses


def _info_lines(count: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"op": "info", "input": CT, "id": i}).encode() for i in range(start, start + count)]


def _mixed_lines() -> list[bytes]:
    """Good and bad lines, several ops and backends, twice over (so the second round is surely
    answered by workers: the first SERIAL_LINES lines are answered by the parent itself)."""
    lines: list[bytes] = []
    for round_ in range(2):
        requests = [
            {"op": "info", "input": CT},
            {"op": "info", "input": CT, "backend": "dcmtk"},
            {"op": "info", "input": CT, "backend": "csharp"},
            {"op": "dump", "input": CT, "output": f"out/dump{round_}.txt", "backend": "dcmtk"},
            {"op": "to_json", "input": CT, "output": f"out/ct{round_}.json", "backend": "csharp"},
            {"op": "to_json", "input": CT, "output": "out/exists.json"},  # refused: no overwrite
            {"op": "stats", "input": CT},
            {"op": "validate", "input": CT, "backend": "dcmtk"},
            {"op": "info", "input": "not-dicom.txt"},
            {"op": "info", "input": "missing.dcm"},
            {"op": "no_such_op", "input": CT},
            {"op": "info", "input": CT, "options": {"no_such_option": 1}},
        ]
        lines += [json.dumps({**request, "id": f"r{round_}-{index}"}).encode() for index, request in enumerate(requests)]
        lines += [b"this is not json", b"", b'{"op": "info", "input": "caf\xe9.dcm", "id": 7}', b"[1, 2]"]
    return lines


def _normalized(stdout: bytes, folder: Path) -> list[dict]:
    """Responses with the run's own folder and the timings taken out."""
    responses = _responses(stdout.replace(str(folder).encode(), b"<run>"))
    for response in responses:
        response.pop("duration_ms")
        if response["metadata"].get("round_trip_ms") is not None:
            response["metadata"].pop("round_trip_ms")
    return responses


def test_workers_answer_exactly_like_the_serial_path(tmp_path):
    require_backend("dcmtk")
    require_backend("csharp")
    lines = _mixed_lines()
    stdin = b"\n".join(lines) + b"\n"
    runs = {}
    for name, args in {"serial": ["--jobs", "1"], "parallel": ["--jobs", "2"], "unordered": ["--jobs", "3", "--unordered"]}.items():
        folder = tmp_path / name
        (folder / "out").mkdir(parents=True)
        (folder / "not-dicom.txt").write_text("plain text, not DICOM\n")
        (folder / "out" / "exists.json").write_text("{}")
        run = _hub(args, stdin, cwd=folder)
        assert run.returncode == 1 and b"Traceback" not in run.stdout + run.stderr, run.stderr[-2000:]
        runs[name] = _normalized(run.stdout, folder)
        assert (folder / "out" / "ct1.json").read_bytes() == (tmp_path / "serial" / "out" / "ct1.json").read_bytes()
        assert (folder / "out" / "dump1.txt").read_bytes() == (tmp_path / "serial" / "out" / "dump1.txt").read_bytes()
    serial = runs["serial"]
    assert len(serial) == len([line for line in lines if line.strip()])
    assert [r["ok"] for r in serial].count(True) == 2 * 7, [(r["id"], r["error"]) for r in serial]
    assert {r["backend"] for r in serial if r["ok"]} == {"python", "dcmtk", "csharp"}
    assert runs["parallel"] == serial
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731 - the unordered run, matched as a multiset
    assert sorted(map(key, runs["unordered"])) == sorted(map(key, serial))


def test_order_is_kept_when_an_early_request_is_slow(tmp_path):
    """A request that takes seconds (C-ECHO to a peer that never answers) among fast ones: in
    order by default; with --unordered the fast answers come first, each carrying its id."""
    with socket.create_server(("127.0.0.1", 0)) as silent_peer:
        port = silent_peer.getsockname()[1]
        slow = json.dumps({"op": "echo", "id": "slow", "options": {"host": "127.0.0.1", "port": port, "network_timeout": 3}}).encode()
        lines = _info_lines(9) + [slow] + _info_lines(20, start=10)
        stdin = b"\n".join(lines) + b"\n"
        ordered = _responses(_hub(["--jobs", "2"], stdin).stdout)
        unordered = _responses(_hub(["--jobs", "2", "--unordered"], stdin).stdout)
    expected = [json.loads(line)["id"] for line in lines]
    assert [r["id"] for r in ordered] == expected
    assert ordered[9]["error"]["code"] in ("network_error", "timeout"), ordered[9]["error"]
    assert sorted(map(str, (r["id"] for r in unordered))) == sorted(map(str, expected))
    assert [r["id"] for r in unordered].index("slow") > 9 + 5, [r["id"] for r in unordered]
    assert all(r["ok"] for r in unordered if r["id"] != "slow")


def test_a_worker_that_dies_answers_its_request_with_a_typed_error():
    """The worker aborts (SIGABRT, as a crashing native decoder does) on line 12: that line gets
    `backend_error`, every other line its normal answer, in order, and the pool goes on."""
    lines = _info_lines(30)
    run = _hub(["--jobs", "2"], b"\n".join(lines) + b"\n", env={CRASH_HOOK: "12"})
    responses = _responses(run.stdout)
    assert [r["id"] for r in responses] == list(range(30))
    crashed = responses[11]
    assert crashed["error"]["code"] == "backend_error" and crashed["op"] == "info"
    assert "request line 12 died (signal SIGABRT)" in crashed["error"]["message"]
    assert all(r["ok"] for index, r in enumerate(responses) if index != 11)
    assert run.returncode == 1


def test_a_short_stream_is_answered_without_workers():
    """The first lines are answered by the parent (no fork for a short stream): the worker-only
    crash hook on line 2 has no effect there."""
    run = _hub(["--jobs", "2"], b"\n".join(_info_lines(3)) + b"\n", env={CRASH_HOOK: "2"})
    assert [r["ok"] for r in _responses(run.stdout)] == [True, True, True]
    assert run.returncode == 0


def test_no_process_outlives_a_killed_parent():
    """kill -9 of `dicom-hub run --stream` while workers (and a worker's C# program) are busy:
    every descendant is gone soon after."""
    require_backend("csharp")
    with socket.create_server(("127.0.0.1", 0)) as silent_peer:
        port = silent_peer.getsockname()[1]
        hub = subprocess.Popen([*HUB, "--jobs", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert hub.stdin is not None and hub.stdout is not None
            lines = _info_lines(10) + [json.dumps({"op": "info", "input": CT, "backend": "csharp", "id": "cs"}).encode()]
            lines.append(json.dumps({"op": "echo", "options": {"host": "127.0.0.1", "port": port, "network_timeout": 60}}).encode())
            hub.stdin.write(b"\n".join(lines) + b"\n")
            hub.stdin.flush()
            answered = [json.loads(hub.stdout.readline()) for _ in range(11)]  # the echo hangs in a worker
            assert answered[-1]["id"] == "cs" and answered[-1]["ok"], answered[-1]
            descendants = _descendants(hub.pid)
            commands = [_command(pid) for pid in descendants]
            assert len(descendants) >= 3, commands  # two workers and the C# program
            hub.send_signal(signal.SIGKILL)
            hub.wait()
        finally:
            hub.kill()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and [pid for pid in descendants if process_alive(pid)]:
            time.sleep(0.1)
        assert not [pid for pid in descendants if process_alive(pid)], [_command(pid) for pid in descendants if process_alive(pid)]


def test_a_slow_reader_of_stdout_stops_the_reading_of_stdin():
    """Requests are read only as fast as answers are taken: with stdout unread, the writer of an
    endless stream of (quickly answered) lines is soon blocked, far before it has written it all."""
    hub = subprocess.Popen([*HUB, "--jobs", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = json.dumps({"op": "no_such_op", "id": 1, "input": "x" * 100}).encode() + b"\n"
    written = [0]

    def feed() -> None:
        try:
            for _ in range(50_000):  # 6 MB of requests
                hub.stdin.write(line)
                written[0] += len(line)
        except (BrokenPipeError, ValueError):
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 3:  # until the writer has been stuck for 3 s
            time.sleep(0.2)
            if written[0] != last:
                last, stable_since = written[0], time.monotonic()
            assert time.monotonic() - stable_since < 120
        assert writer.is_alive() and written[0] < 1_000_000, written[0]
        rss_kb = int(re.search(rb"VmRSS:\s+(\d+)", Path(f"/proc/{hub.pid}/status").read_bytes()).group(1))
        assert rss_kb < 200_000, rss_kb
    finally:
        hub.kill()
        hub.wait()
        writer.join(timeout=10)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return f"{pid} (gone)"


def test_a_client_that_waits_for_each_answer_gets_it():
    """One line at a time, each answer awaited before the next line (past the serial lines, so
    workers answer): nothing waits for more input; a last line without a newline is answered."""
    hub = subprocess.Popen([*HUB, "--jobs", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert hub.stdin is not None and hub.stdout is not None
    try:
        for line in _info_lines(15):
            hub.stdin.write(line + b"\n")
            hub.stdin.flush()
            assert json.loads(hub.stdout.readline())["id"] == json.loads(line)["id"]
        hub.stdin.write(_info_lines(1, start=99)[0])
        hub.stdin.close()
        (last,) = _responses(hub.stdout.read())
        assert last["id"] == 99 and last["ok"] and hub.wait(timeout=60) == 0
    finally:
        hub.kill()
        hub.wait()


@pytest.mark.parametrize("jobs", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_whole_number(jobs):
    run = _hub(["--jobs", jobs], b"")
    assert run.returncode == 2 and b"--jobs" in run.stderr and not run.stdout


def test_a_worker_is_given_more_lines_ahead_the_quicker_it_answers():
    """Quick answers (the fast lane's): up to PIPELINE lines ahead, so the loop turns seldom; one
    slow answer brings it back to PIPELINE_MIN, so few lines wait behind a slow request."""
    from dicom_hub.interface.commands.stream_pool import PIPELINE, PIPELINE_MIN, _Worker

    worker = _Worker(pid=0, to_worker=-1, from_worker=-1)
    assert worker.depth() == PIPELINE_MIN  # nothing known yet
    worker.answered(8, worker.since + 0.002)  # 0.25 ms per answer
    assert worker.depth() == PIPELINE
    worker.answered(1, worker.since + 0.5)  # a request that took half a second
    assert worker.depth() == PIPELINE_MIN
    worker.tasks.extend((i, i, b"{}\n") for i in range(PIPELINE_MIN))
    assert not worker.room_for(10) and _Worker(pid=0, to_worker=-1, from_worker=-1).room_for(1 << 20)  # an idle worker takes any line
