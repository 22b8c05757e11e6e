"""Contract-native backends: registration (env and TOML), the request a program receives, the
Python backend run as a subprocess against the in-process one, and what happens when a program
crashes, hangs or answers outside the contract (fake programs written into tmp_path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok, run_request, sample
from dicom_hub.adapters import contract_cli
from dicom_hub.adapters.contract_cli import (
    ContractCliAdapter,
    configured_backends,
    parse_env_backends,
    request_for,
)
from dicom_hub.adapters.registry import adapter_names, get_adapter
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.job import Job

PYTHON_BACKEND = f"{sys.executable} -m dicom_hub.python_backend"


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch, tmp_path):
    """No user config leaks in; registry caches are dropped around each test."""
    monkeypatch.setenv("DICOM_HUB_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("DICOM_HUB_BACKENDS", raising=False)
    get_adapter.cache_clear()
    yield
    get_adapter.cache_clear()


def register(monkeypatch, **programs: str) -> None:
    monkeypatch.setenv("DICOM_HUB_BACKENDS", ";".join(f"{name.replace('_', '-')}={cmd}" for name, cmd in programs.items()))
    get_adapter.cache_clear()


# -- registration -----------------------------------------------------------------------------------
def test_env_format_splits_entries_and_quotes():
    entries = parse_env_backends("a=prog --x 'two words' ; b-2=/opt/b/bin/b;;")
    assert [(n, argv) for n, argv, _ in entries] == [("a", ["prog", "--x", "two words"]), ("b-2", ["/opt/b/bin/b"])]


def test_env_format_rejects_bad_entries(capsys):
    entries = parse_env_backends("no-equals-sign;Bad Name=x;ok=prog;empty=")
    assert [(n, argv) for n, argv, _ in entries] == [("ok", ["prog"]), ("empty", None)]
    assert "no-equals-sign" in capsys.readouterr().err


def test_toml_config_lists_commands(monkeypatch, tmp_path):
    config = tmp_path / "backends.toml"
    config.write_text(f'pyproc = "{PYTHON_BACKEND}"\nlisted = ["{sys.executable}", "-m", "dicom_hub.python_backend"]\n')
    monkeypatch.setenv("DICOM_HUB_CONFIG", str(config))
    configured = configured_backends()
    assert sorted(configured) == ["listed", "pyproc"]
    assert configured["listed"].command() == [sys.executable, "-m", "dicom_hub.python_backend"]
    assert "pyproc" in adapter_names()


def test_env_wins_over_config_file(monkeypatch, tmp_path):
    config = tmp_path / "backends.toml"
    config.write_text('same = "prog-from-file"\n')
    monkeypatch.setenv("DICOM_HUB_CONFIG", str(config))
    register(monkeypatch, same=f"{sys.executable} -V")
    assert configured_backends()["same"].command()[0] == sys.executable


def test_missing_program_is_unavailable_with_reason(monkeypatch):
    register(monkeypatch, ghost="/nonexistent/ghost-program --x")
    adapter = get_adapter("ghost")
    assert not adapter.available()
    assert "/nonexistent/ghost-program" in adapter.availability.reason
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "ghost"}, "backend_unavailable")
    assert "ghost" in data["error"]["message"]


def test_request_for_job_sends_absolute_paths_and_given_options(tmp_path):
    job = Job(op="dump", inputs=(sample("CT_small.dcm"),), output=tmp_path / "d.txt", options={"max_depth": 1}, defaults={"max_value_length": 64}, id=7)
    request = request_for(job)
    assert request == {
        "contract": "1.0",
        "id": 7,
        "op": "dump",
        "input": str(sample("CT_small.dcm")),
        "output": str(tmp_path / "d.txt"),
        "options": {"max_depth": 1},
    }
    assert Path(request["input"]).is_absolute()


def test_a_program_that_asks_for_defaults_gets_the_catalog_defaults_of_the_options_not_given(tmp_path):
    job = Job(op="dump", inputs=(sample("CT_small.dcm"),), output=None, options={"max_depth": 1, "include_pixel_data": True},
              defaults={**get_op("dump").defaults, "include_pixel_data": False, "verify": "structure"})
    assert "defaults" not in request_for(job)
    request = request_for(job, defaults=True)
    assert request["options"] == {"max_depth": 1, "include_pixel_data": True}
    assert request["defaults"] == {"max_value_length": get_op("dump").defaults["max_value_length"], "overwrite": False}


def test_build_cmd_is_the_program_alone(monkeypatch):
    register(monkeypatch, pyproc=PYTHON_BACKEND)
    adapter = get_adapter("pyproc")
    job = Job(op="info", inputs=(sample("CT_small.dcm"),), output=None)
    assert adapter._build_cmd(job) == [sys.executable, "-m", "dicom_hub.python_backend"]


# -- the Python backend as a contract-native program --------------------------------------------
def _same_answer(monkeypatch, tmp_path, request: dict) -> tuple[dict, dict]:
    register(monkeypatch, pyproc=PYTHON_BACKEND)
    answers = []
    for backend in ("python", "pyproc"):
        req = json.loads(json.dumps(request).replace("{OUT}", str(tmp_path / backend)))
        answers.append(run_request({**req, "backend": backend}))
    native, proc = answers
    # Requests the dispatcher refuses before choosing a backend never reach the program.
    assert proc["backend"] == ("pyproc" if native["backend"] else None)
    assert proc["ok"] == native["ok"], (native["error"], proc["error"])
    assert proc["error"] == native["error"]
    return native, proc


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "info", "input": "sample:CT_small.dcm"},
        {"op": "info", "input": "sample:rtplan.dcm"},
        {"op": "dump", "input": "sample:MR_small.dcm", "options": {"max_value_length": 16}},
        {"op": "to_json", "input": "sample:CT_small.dcm", "options": {"bulk_data": "omit"}},
    ],
    ids=["info-ct", "info-rtplan", "dump-mr", "to_json-ct"],
)
def test_python_subprocess_answers_like_in_process(monkeypatch, tmp_path, request_):
    native, proc = _same_answer(monkeypatch, tmp_path, request_)
    assert native["ok"]
    assert proc["metadata"] == native["metadata"]
    assert proc["stdout"] == native["stdout"]


def test_python_subprocess_writes_the_same_output(monkeypatch, tmp_path):
    (tmp_path / "python").mkdir()
    (tmp_path / "pyproc").mkdir()
    native, proc = _same_answer(monkeypatch, tmp_path, {"op": "dump", "input": "sample:rtplan.dcm", "output": "{OUT}/dump.txt"})
    assert native["ok"]
    assert proc["output_files"] == [str(tmp_path / "pyproc" / "dump.txt")]
    assert (tmp_path / "pyproc" / "dump.txt").read_text() == (tmp_path / "python" / "dump.txt").read_text()


def test_python_subprocess_typed_errors(monkeypatch, tmp_path):
    text = tmp_path / "notes.dcm"
    text.write_text("this is not DICOM\n" * 20)
    native, proc = _same_answer(monkeypatch, tmp_path, {"op": "info", "input": str(text)})
    assert proc["error"]["code"] == "not_dicom"
    existing = tmp_path / "exists.txt"
    existing.write_text("keep me")
    native, proc = _same_answer(monkeypatch, tmp_path, {"op": "dump", "input": "sample:CT_small.dcm", "output": str(existing)})
    assert proc["error"]["code"] == "output_exists"
    assert existing.read_text() == "keep me"
    native, proc = _same_answer(monkeypatch, tmp_path, {"op": "info", "input": str(tmp_path / "missing.dcm")})
    assert proc["error"]["code"] == "input_not_found"


def test_python_subprocess_passes_the_same_conformance_specs(monkeypatch, tmp_path):
    """Every spec cell of the subprocess backend ends in the same state as the in-process one."""
    from dicom_hub.adapters.conformance.runner import Runner
    from dicom_hub.adapters.conformance.specs import load_specs

    register(monkeypatch, pyproc=PYTHON_BACKEND)
    specs = load_specs()
    assert specs, "no conformance specs found"
    with Runner(tmp_path) as runner:  # stops the network specs' peer
        for spec in specs:
            native = runner.run_cell(spec, "python")
            proc = runner.run_cell(spec, "pyproc")
            assert proc.status == native.status, f"{spec.id}: python {native.status} ({native.detail}) vs pyproc {proc.status} ({proc.detail})"


def test_program_itself_reads_stdin_and_streams(tmp_path):
    """The protocol without dicom-hub in front: one request per run, or NDJSON with --stream."""
    ct = str(sample("CT_small.dcm"))
    one = subprocess.run([sys.executable, "-m", "dicom_hub.python_backend"], input=json.dumps({"op": "info", "input": ct}), capture_output=True, text=True, timeout=120)
    assert one.returncode == 0
    assert json.loads(one.stdout)["metadata"]["patient"]["PatientID"] == "1CT1"
    lines = "\n".join([json.dumps({"op": "info", "input": ct, "id": 1}), "not json", json.dumps({"op": "nope", "id": 3})]) + "\n"
    stream = subprocess.run([sys.executable, "-m", "dicom_hub.python_backend", "--stream"], input=lines, capture_output=True, text=True, timeout=120)
    answers = [json.loads(line) for line in stream.stdout.splitlines()]
    assert [(a["id"], a["ok"]) for a in answers] == [(1, True), (None, False), (3, False)]
    assert [a["error"]["code"] for a in answers[1:]] == ["invalid_request", "unknown_op"]
    assert stream.returncode == 2
    existing = tmp_path / "exists.txt"
    existing.write_text("keep me")
    refused = subprocess.run(
        [sys.executable, "-m", "dicom_hub.python_backend"],
        input=json.dumps({"op": "dump", "input": ct, "output": str(existing)}),
        capture_output=True, text=True, timeout=120,
    )
    assert json.loads(refused.stdout)["error"]["code"] == "output_exists"
    assert refused.returncode == 1
    assert existing.read_text() == "keep me"


def test_capabilities_of_the_python_program_match_the_adapter():
    run = subprocess.run([sys.executable, "-m", "dicom_hub.python_backend", "--capabilities"], capture_output=True, text=True, timeout=120)
    doc = json.loads(run.stdout)
    assert doc["contract"] == "1.0" and doc["language"] == "python"
    assert sorted(doc["ops"]) == sorted(get_adapter("python").capabilities())


def test_backends_command_lists_configured_program(tmp_path):
    env = {**os.environ, "DICOM_HUB_BACKENDS": f"pyproc={PYTHON_BACKEND}", "DICOM_HUB_CONFIG": str(tmp_path / "none.toml")}
    run = subprocess.run([sys.executable, "-m", "dicom_hub.interface", "backends", "--json"], capture_output=True, text=True, env=env, timeout=120)
    rows = {row["name"]: row for row in json.loads(run.stdout)}
    assert rows["pyproc"]["available"] is True
    assert rows["pyproc"]["language"] == "python"
    assert rows["pyproc"]["ops"] == rows["python"]["ops"]


# -- programs that break the contract ---------------------------------------------------------------
CAPABILITIES = json.dumps({"contract": "1.0", "version": "0.1", "language": "python", "toolkit": "fake", "ops": {"info": {"options": [], "note": ""}, "dump": {"options": None}, "to_json": {"options": ["indent"]}}})


def fake_program(tmp_path: Path, name: str, body: str) -> str:
    """A tiny Python program that answers --capabilities properly and does `body` for a request."""
    script = tmp_path / f"{name}.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            import json, sys, time
            if "--capabilities" in sys.argv:
                print({CAPABILITIES!r})
                sys.exit(0)
            request = json.loads(sys.stdin.read())
            def respond(**fields):
                response = {{"contract": "1.0", "id": request.get("id"), "op": request["op"], "backend": "fake", "ok": True,
                            "returncode": 0, "stdout": "", "stderr": "", "output_files": [], "metadata": {{}}, "duration_ms": 1.0, "error": None}}
                response.update(fields)
                print(json.dumps({{k: v for k, v in response.items() if v != "DROP"}}))
            """
        )
        + textwrap.dedent(body)
    )
    return f"{sys.executable} {script}"


@pytest.mark.parametrize(
    ("body", "message_part", "stderr_part"),
    [
        ("sys.stderr.write('segfault-ish crash\\n'); sys.exit(139)\n", "exited with code 139", "segfault-ish crash"),
        ("print('Traceback? no: plain text'); sys.stderr.write('noise\\n')\n", "not one JSON response", "noise"),
        ("respond(error={'code': 'not_dicom', 'message': 'x', 'hint': None})\n", "violates the contract", ""),
        ("respond(ok=False, error={'code': 'made_up_code', 'message': 'x', 'hint': None})\n", "violates the contract", ""),
        ("respond(contract='DROP')\n", "must contain ['contract']", ""),
        ("print(json.dumps([1, 2, 3]))\n", "violates the contract", ""),
        ("respond(); respond()\n", "not one JSON response", ""),
    ],
    ids=["crash", "not-json", "ok-with-error", "unknown-code", "missing-field", "not-object", "two-responses"],
)
def test_broken_programs_become_backend_errors(monkeypatch, tmp_path, body, message_part, stderr_part):
    register(monkeypatch, fake=fake_program(tmp_path, "fake", body))
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"}, "backend_error")
    assert message_part in data["error"]["message"]
    assert stderr_part in data["stderr"]
    assert data["backend"] == "fake"


def test_hanging_program_times_out(monkeypatch, tmp_path):
    register(monkeypatch, sleeper=fake_program(tmp_path, "sleeper", "sys.stderr.write('started\\n'); sys.stderr.flush(); time.sleep(60)\n"))
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "sleeper", "options": {"timeout": 1}}, "timeout")
    assert "started" in data["stderr"]
    assert data["duration_ms"] < 30000


def test_program_errors_pass_through_typed(monkeypatch, tmp_path):
    body = "respond(ok=False, error={'code': 'decode_error', 'message': 'bad pixel data', 'hint': 'h'}, stderr='own'); sys.exit(1)\n"
    register(monkeypatch, fake=fake_program(tmp_path, "fake", body))
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"}, "decode_error")
    assert data["error"] == {"code": "decode_error", "message": "bad pixel data", "hint": "h"}
    assert data["returncode"] == 1
    assert "own" in data["stderr"]


def test_program_ok_answer_is_used(monkeypatch, tmp_path):
    body = "respond(metadata={'echo': request['input'], 'opts': request['options']})\n"
    register(monkeypatch, fake=fake_program(tmp_path, "fake", body))
    data = expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"})
    assert data["metadata"] == {"echo": str(sample("CT_small.dcm")), "opts": {}}


def test_outputs_outside_the_request_are_refused(monkeypatch, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    stray = tmp_path / "elsewhere" / "stray.txt"
    stray.write_text("x")
    body = f"respond(output_files=[{str(stray)!r}])\n"
    register(monkeypatch, fake=fake_program(tmp_path, "fake", body))
    data = expect_error({"op": "dump", "input": "sample:CT_small.dcm", "output": str(tmp_path / "d.txt"), "backend": "fake"}, "backend_error")
    assert "outside" in data["error"]["message"]


def test_options_outside_capabilities_are_refused_before_running(monkeypatch, tmp_path):
    marker = tmp_path / "ran"
    register(monkeypatch, fake=fake_program(tmp_path, "fake", f"open({str(marker)!r}, 'w').write('ran')\n"))
    expect_error({"op": "to_json", "input": "sample:CT_small.dcm", "backend": "fake", "options": {"bulk_data": "omit"}}, "unsupported_option")
    expect_error({"op": "stats", "input": "sample:CT_small.dcm", "backend": "fake"}, "unsupported_op")
    assert not marker.exists()


@pytest.mark.parametrize(
    "capabilities",
    ["not json", json.dumps({"no_ops": 1}), json.dumps({"contract": "2.0", "ops": {}}), json.dumps({"ops": {"info": {"options": "all"}}})],
    ids=["not-json", "no-ops", "other-major", "bad-options"],
)
def test_bad_capabilities_make_the_backend_unavailable(tmp_path, capabilities):
    script = tmp_path / "caps.py"
    script.write_text(f"print({capabilities!r})\n")
    adapter = ContractCliAdapter("caps", [sys.executable, str(script)], "test")
    assert not adapter.available()
    assert "--capabilities" in adapter.availability.reason
    assert adapter.capabilities() == {}


def test_capabilities_are_asked_once(tmp_path):
    counter = tmp_path / "count"
    script = tmp_path / "count.py"
    script.write_text(f"open({str(counter)!r}, 'a').write('x')\nprint({CAPABILITIES!r})\n")
    adapter = ContractCliAdapter("count", [sys.executable, str(script)], "test")
    for _ in range(3):
        assert set(adapter.capabilities()) == {"info", "dump", "to_json"}
    assert counter.read_text() == "x"
    assert adapter.toolkit == "fake"
    assert adapter.support("dump").options is None


def test_config_cache_follows_the_environment(monkeypatch):
    register(monkeypatch, one=PYTHON_BACKEND)
    assert "one" in configured_backends()
    register(monkeypatch, two=PYTHON_BACKEND)
    assert set(configured_backends()) == {"two"}
    assert contract_cli.config_path().name == "no-config.toml"


# -- long-lived programs (--stream) -----------------------------------------------------------------
STREAMING = textwrap.dedent(
    """\
    import json, os, sys, time
    CAPS = {"contract": "1.0", "version": "0.1", "toolkit": "fake", "stream": True, "ops": {"info": {"options": []}}}
    if "--capabilities" in sys.argv:
        print(json.dumps(CAPS)); sys.exit(0)
    assert "--stream" in sys.argv
    for line in sys.stdin:
        request = json.loads(line)
        if request["id"] == "crash":
            sys.stderr.write("dying now\\n"); sys.stderr.flush(); os._exit(7)
        if request["id"] == "hang":
            time.sleep(60)
        if request["id"] == "garbage":
            print("not json\\nmore lines that must not be read as later answers", flush=True)
            continue
        print(json.dumps({"contract": "1.0", "id": request["id"], "op": "info", "backend": "s", "ok": True, "returncode": 0,
                          "stdout": "", "stderr": "", "output_files": [], "metadata": {"pid": os.getpid()}, "duration_ms": 0.1, "error": None}), flush=True)
    """
)


def test_streaming_program_is_kept_and_restarted_after_crash_or_hang(monkeypatch, tmp_path):
    script = tmp_path / "streaming.py"
    script.write_text(STREAMING)
    register(monkeypatch, streamer=f"{sys.executable} {script}")
    base = {"op": "info", "input": "sample:CT_small.dcm", "backend": "streamer"}
    first = expect_ok({**base, "id": 1})["metadata"]["pid"]
    assert expect_ok({**base, "id": 2})["metadata"]["pid"] == first  # one process for both
    crashed = expect_error({**base, "id": "crash"}, "backend_error")
    assert "exited with code 7" in crashed["error"]["message"] and "dying now" in crashed["stderr"]
    second = expect_ok({**base, "id": 3})["metadata"]["pid"]
    assert second != first
    expect_error({**base, "id": "hang", "options": {"timeout": 1}}, "timeout")
    third = expect_ok({**base, "id": 4})["metadata"]["pid"]
    assert third not in (first, second)
    expect_error({**base, "id": "garbage"}, "backend_error")
    answer = expect_ok({**base, "id": 5})
    assert answer["metadata"]["pid"] != third  # restarted: the rest of the garbage was dropped
