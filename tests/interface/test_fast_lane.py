"""The fast lane of `dicom-hub run` (`interface/commands/fast_lane.py`) answers a plain `info`
request exactly as the dispatcher does, steps aside on everything else (every request the schema
refuses included, so the dispatcher refuses it with its own code and words), and a stream of such
requests is answered without importing pydicom, the adapters or a JSON Schema validator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import sample
from dicom_hub.adapters.dispatch import dispatch, response_json
from dicom_hub.interface.commands import fast_lane

ROOT = Path(__file__).resolve().parents[2]
CT = str(sample("CT_small.dcm"))
HEAVY = ("pydicom", "numpy", "jsonschema", "fastjsonschema", "pydantic", "dicom_hub.adapters.dispatch")


def _without_timing(text: str) -> dict[str, Any]:
    response = json.loads(text)
    response.pop("duration_ms")
    return response


def _variants(tmp_path: Path) -> list[Any]:
    """Plain info requests and near misses: each field of the request changed one at a time."""
    (tmp_path / "not-dicom.txt").write_text("plain text, not DICOM\n")
    (tmp_path / "folder").mkdir()
    base = {"op": "info", "input": CT}
    changes: dict[str, list[Any]] = {
        "op": ["info", "Info", "dump", "", 5, None],
        "input": [CT, "sample:CT_small.dcm", "sample:MR_small.dcm", "sample:no_such.dcm", "sample:../x", str(sample("JPEG2000.dcm")),
                  str(tmp_path / "missing.dcm"), str(tmp_path / "not-dicom.txt"), str(tmp_path / "folder"), "/dev/null", "",
                  "a\x00b", "caf\udce9.dcm", "x\ud800", [CT], [CT, CT], [], 5, None, os.path.relpath(CT)],
        "id": [None, 0, 7, -3, 2**70, "job-1", "", "\ud800", "é", True, 1.5, [1], {"a": 1}],
        "backend": ["auto", "python", "dcmtk", "cpp", "Python", "no_such", "", 5, None],
        "contract": [None, "1.0", "1.7", "2.0", "01.0", "1", "one", "1.0\n", 1.0],
        "options": [{}, {"timeout": 30}, {"timeout": -1}, {"no_such": 1}, [], None, "x"],
        "output": [None, str(tmp_path / "out.json"), "", 3],
        "extra": [1],
    }
    requests: list[Any] = [base, [base], "info", 5, None]
    for field, values in changes.items():
        requests += [{**base, field: value} for value in values]
    requests += [{key: value for key, value in base.items() if key != field} for field in base]
    examples = json.loads((ROOT / "contract" / "examples" / "requests.json").read_text())
    requests += examples["valid"] + examples["invalid"]
    requests += [{"input": CT, **example} for example in examples["invalid"] if isinstance(example, dict)]
    return requests


def test_the_lane_answers_exactly_like_the_dispatcher(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the relative-path variant
    answered = refused = 0
    for request in _variants(tmp_path):
        fast = fast_lane.answer(request)
        expected = json.loads(response_json(dispatch(request)))
        if expected["error"] and expected["error"]["code"] in ("invalid_request", "unknown_op"):
            refused += 1
            assert fast is None, request  # the schema's and the dispatcher's refusals stay theirs
        if fast is None:
            continue
        answered += 1
        expected.pop("duration_ms")
        assert _without_timing(fast) == expected, request
    assert answered >= 15 and refused >= 40, (answered, refused)


def test_pretty_output_is_the_dispatchers_too():
    request = {"op": "info", "input": CT, "id": "p"}
    fast = fast_lane.answer(request, indent=2)
    assert fast is not None and fast.startswith('{\n  "contract"')
    expected = json.loads(response_json(dispatch(request), indent=2))
    expected.pop("duration_ms")
    assert _without_timing(fast) == expected


PROBE = """
import sys
from dicom_hub.interface.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print(" ".join(sorted(m for m in {heavy!r} if m in sys.modules)) or "-", file=sys.stderr)
sys.exit(code)
"""


def _probe(args: list[str], stdin: bytes) -> tuple[list[dict[str, Any]], str]:
    run = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], input=stdin, capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return [json.loads(line) for line in run.stdout.splitlines()], run.stderr.decode().strip().splitlines()[-1]


def test_a_stream_of_plain_info_requests_imports_nothing_heavy():
    lines = b"".join(json.dumps({"op": "info", "input": path, "id": i}).encode() + b"\n" for i, path in enumerate([CT, "sample:MR_small.dcm"] * 10))
    responses, imported = _probe(["run", "--stream", "--jobs", "1"], lines)
    assert [r["id"] for r in responses] == list(range(20)) and all(r["ok"] and r["backend"] == "python" for r in responses)
    assert responses[1]["metadata"]["image"]["Rows"] == 64
    assert imported == "-"


def test_a_single_info_request_imports_nothing_heavy():
    (response,), imported = _probe(["run", "--op", "info", "--input", "sample:CT_small.dcm", "--id", "one"], b"")
    assert response["ok"] and response["id"] == "one" and response["metadata"]["image"]["Rows"] == 128
    assert imported == "-"


def test_a_file_the_lane_does_not_read_goes_the_full_way_in_the_same_stream():
    """A JPEG 2000 file (fast_info reads only plain little-endian files): pydicom's path answers it."""
    lines = b"".join(json.dumps({"op": "info", "input": path}).encode() + b"\n" for path in (CT, str(sample("JPEG2000.dcm")), CT))
    responses, imported = _probe(["run", "--stream", "--jobs", "1"], lines)
    assert [r["ok"] for r in responses] == [True, True, True]
    assert responses[1]["metadata"]["file"]["transfer_syntax_name"] == "JPEG 2000 Image Compression"
    assert "pydicom" in imported.split()
