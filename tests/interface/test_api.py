"""The Python API answers exactly what the CLI prints, errors included."""

from __future__ import annotations

import json
import subprocess
import sys

from dicom_hub.contract.messages import schema_problem
from dicom_hub.interface import run
from dicom_hub.interface.api import run_many


def _cli(request: dict) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "dicom_hub.interface", "run"],
        input=json.dumps(request), capture_output=True, text=True, timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


def _comparable(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "duration_ms"}


def test_info_matches_the_cli():
    request = {"op": "info", "input": "sample:CT_small.dcm", "id": 7}
    response = run(request)
    assert schema_problem("response", response) is None
    assert response["ok"] is True and response["id"] == 7
    assert response["metadata"]["image"]["SOPInstanceUID"] == "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    code, printed = _cli(request)
    assert code == 0
    assert _comparable(printed) == _comparable(response)


def test_errors_are_answers_not_exceptions(tmp_path):
    missing = run({"op": "info", "input": str(tmp_path / "nope.dcm")})
    assert missing["ok"] is False and missing["error"]["code"] == "input_not_found"
    unknown = run('{"op": "no_such_op"}')
    assert unknown["ok"] is False and unknown["error"]["code"] == "unknown_op"
    broken = run(b"{not json")
    assert broken["error"]["code"] == "invalid_request"
    assert all(schema_problem("response", r) is None for r in (missing, unknown, broken))


def test_run_many_answers_in_order(tmp_path):
    out = tmp_path / "ct.json"
    answers = list(run_many([
        {"op": "info", "input": "sample:MR_small.dcm", "id": "a"},
        {"op": "to_json", "input": "sample:CT_small.dcm", "output": str(out), "id": "b"},
        {"op": "info", "input": str(tmp_path / "missing.dcm"), "id": "c"},
    ]))
    assert [a["id"] for a in answers] == ["a", "b", "c"]
    assert [a["ok"] for a in answers] == [True, True, False]
    assert json.loads(out.read_text())["00080018"]["Value"] == ["1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"]
