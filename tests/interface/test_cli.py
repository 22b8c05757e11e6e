"""The CLI, once in-process through main(argv) and once as a real subprocess (like a user)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import response_validator
from dicom_hub.interface.cli import main

CLI = [sys.executable, "-m", "dicom_hub.interface"]


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=120)


def _valid(line: str) -> dict:
    data = json.loads(line)
    assert not list(response_validator().iter_errors(data))
    return data


def test_run_from_flags():
    result = _run(["run", "--op", "info", "--input", "sample:CT_small.dcm", "--id", "a1"])
    assert result.returncode == 0, result.stderr
    data = _valid(result.stdout)
    assert data["ok"] and data["id"] == "a1" and data["metadata"]["image"]["Rows"] == 128


def test_run_from_stdin_and_exit_codes():
    ok = _run(["run"], stdin='{"op": "info", "input": "sample:MR_small.dcm"}')
    assert ok.returncode == 0 and _valid(ok.stdout)["metadata"]["series"]["Modality"] == "MR"
    failed = _run(["run"], stdin='{"op": "info", "input": "/nonexistent.dcm"}')
    assert failed.returncode == 1 and _valid(failed.stdout)["error"]["code"] == "input_not_found"
    invalid = _run(["run"], stdin='{"op": "info", "input": "sample:CT_small.dcm", "options": {"x": 1}}')
    assert invalid.returncode == 2 and _valid(invalid.stdout)["error"]["code"] == "invalid_request"
    garbage = _run(["run"], stdin="this is not json")
    assert garbage.returncode == 2 and _valid(garbage.stdout)["error"]["code"] == "invalid_request"


def test_request_file(tmp_path):
    request = tmp_path / "req.json"
    request.write_text(json.dumps({"op": "dump", "input": "sample:CT_small.dcm", "output": str(tmp_path / "dump.txt")}))
    result = _run(["run", str(request)])
    assert result.returncode == 0, result.stdout
    assert "1CT1" in (tmp_path / "dump.txt").read_text()
    again = _run(["run", "--request-file", str(request)])
    assert again.returncode == 1 and _valid(again.stdout)["error"]["code"] == "output_exists"


def test_bad_options_flag_is_a_response_not_a_traceback():
    result = _run(["run", "--op", "info", "--input", "sample:CT_small.dcm", "--options", "{oops"])
    assert result.returncode == 2
    assert _valid(result.stdout)["error"]["code"] == "invalid_request"
    assert "Traceback" not in result.stdout + result.stderr


def test_stream_keeps_order_and_survives_bad_lines():
    lines = [
        json.dumps({"op": "info", "input": "sample:CT_small.dcm", "id": 1}),
        "{broken",
        "",
        json.dumps({"op": "nosuch", "id": 3}),
        json.dumps({"op": "info", "input": "sample:MR_small.dcm", "id": 4}),
    ]
    result = _run(["run", "--stream"], stdin="\n".join(lines) + "\n")
    responses = [_valid(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in responses] == [1, None, 3, 4]
    assert [r["ok"] for r in responses] == [True, False, False, True]
    assert responses[1]["error"]["code"] == "invalid_request"
    assert responses[2]["error"]["code"] == "unknown_op"
    assert result.returncode == 1


def test_in_process_main_matches(capsys):
    assert main(["run", "--op", "info", "--input", "sample:CT_small.dcm"]) == 0
    data = _valid(capsys.readouterr().out)
    assert data["backend"] == "python"
    assert main(["run", "--op", "info", "--input", "sample:nope.dcm"]) == 1


@pytest.mark.parametrize("command", [["ops"], ["ops", "to_image"], ["backends"], ["samples"], ["doctor"], ["--help"], ["run", "--help"]])
def test_listing_commands(command, capsys):
    try:
        code = main(command)
    except SystemExit as exit_:  # --help
        code = exit_.code
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip()


def test_ops_json_and_backends_json(capsys):
    main(["ops", "info", "--json"])
    described = json.loads(capsys.readouterr().out)
    assert described["input"] == "file" and "python" in described["backends"]
    main(["backends", "--json"])
    rows = json.loads(capsys.readouterr().out)
    python = next(r for r in rows if r["name"] == "python")
    assert python["available"] and "info" in python["ops"]
    assert python["version"].startswith("pydicom 3.")  # looked up when asked for, not at the probe


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("dicom-hub")
    result = subprocess.run([str(exe), "run", "--op", "info", "--input", "sample:CT_small.dcm"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and _valid(result.stdout)["ok"]
