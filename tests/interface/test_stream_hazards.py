"""`dicom-hub run` at its byte boundary: whatever arrives on stdin (or in a request file), every
request gets one answer, in order, as valid UTF-8 JSON that fits the published schema.

Run as real subprocesses of the installed `dicom-hub` script, under a strict UTF-8 locale and
under the C locale, because the failures depended on how Python decodes stdin and encodes stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import response_validator, sample

HUB = [str(Path(sys.executable).with_name("dicom-hub"))]
LOCALES = ["en_US.UTF-8", "C"]


def _hub(args: list[str | bytes], stdin: bytes | None, locale: str = "en_US.UTF-8") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIO", "PYTHONUTF8"))}
    env["LANG"] = env["LC_ALL"] = locale
    return subprocess.run([*HUB, *args], input=stdin, capture_output=True, env=env, timeout=300)


def _responses(stdout: bytes) -> list[dict]:
    """Every stdout line as a response: valid UTF-8, standard JSON, schema-valid."""
    responses = []
    for line in stdout.splitlines():
        text = line.decode("utf-8")  # raises on anything that is not UTF-8
        data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
        assert not list(response_validator().iter_errors(data)), data
        responses.append(data)
    return responses


def _good(id_: int) -> bytes:
    return json.dumps({"op": "info", "input": "sample:CT_small.dcm", "id": id_}).encode()


HAZARDS: dict[str, bytes] = {
    "lone surrogate in a path": b'{"op": "info", "input": "x\\ud800.dcm", "id": 2}',
    "lone surrogate in an option": b'{"op": "modify_tags", "input": "sample:CT_small.dcm", "output": "/tmp/never.dcm", "options": {"set": {"PatientName": "a\\udfff"}}, "id": 2}',
    "byte 0xff in a line": b'{"op": "info", "input": "x\xff.dcm", "id": 2}',
    "latin-1 text": '{"op": "info", "input": "caf\u00e9.dcm", "id": 2}'.encode("latin-1"),
    "100,000-deep JSON": b"[" * 100_000,
    "100,000-deep options": b'{"op": "info", "id": 2, "options": {"x": ' + b"[" * 100_000 + b"}",
    "deep but parseable options": b'{"op": "info", "input": "sample:CT_small.dcm", "id": 2, "options": {"x": ' + b"[" * 900 + b"]" * 900 + b"}}",
    "not JSON": b"this is not json",
    "a JSON array": b"[1, 2]",
    "a NUL byte": b'{"op": "info", "input": "a\x00b", "id": 2}',
    "a NUL escape in an output path": b'{"op": "to_json", "input": "sample:CT_small.dcm", "output": "/tmp/a\\u0000b", "id": 2}',
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("hazard", sorted(HAZARDS))
def test_every_line_is_answered_in_order(hazard, locale):
    stream = b"\n".join([_good(1), HAZARDS[hazard], b"", _good(3)]) + b"\n"
    run = _hub(["run", "--stream"], stream, locale)
    responses = _responses(run.stdout)
    assert len(responses) == 3, (hazard, run.stdout[-2000:], run.stderr[-2000:])
    first, bad, last = responses
    assert first["ok"] and first["id"] == 1 and last["ok"] and last["id"] == 3
    assert not bad["ok"] and bad["error"]["code"] in ("invalid_request", "input_not_found"), bad["error"]
    assert bad["error"]["code"] != "internal_error"
    assert b"Traceback" not in run.stdout + run.stderr
    assert run.returncode == 1


def test_a_hazard_is_invalid_request_with_exit_code_two(tmp_path):
    """Single-request mode: stdin bytes, a request file, and the response's returncode agree
    with the process's exit code."""
    for stdin in (HAZARDS["byte 0xff in a line"], HAZARDS["100,000-deep JSON"], HAZARDS["lone surrogate in a path"]):
        run = _hub(["run"], stdin)
        (response,) = _responses(run.stdout)
        assert response["error"]["code"] == "invalid_request", response["error"]
        assert run.returncode == 2 and response["returncode"] == 2
    request = tmp_path / "request.json"
    request.write_bytes(HAZARDS["latin-1 text"])
    run = _hub(["run", str(request)], None)
    (response,) = _responses(run.stdout)
    assert response["error"]["code"] == "invalid_request" and "UTF-8" in response["error"]["message"]
    assert run.returncode == 2 == response["returncode"]


def test_file_names_that_are_not_utf8_work_and_are_escaped(tmp_path):
    """A file name with byte 0xff: given on the command line (bytes) or as \\udcff in JSON, the op
    runs on it, and the answer names it with a JSON escape, never the raw byte."""
    folder = os.fsencode(tmp_path)
    source = folder + b"/in\xff.dcm"
    shutil.copyfile(sample("CT_small.dcm"), source)
    out = folder + b"/out\xff.json"
    run = _hub(["run", "--op", "to_json", "--input", source, "--output", out], None)
    (response,) = _responses(run.stdout)
    assert response["ok"], response["error"]
    assert [os.fsencode(p) for p in response["output_files"]] == [out]
    assert b"\xff" not in run.stdout and b"\\udcff" in run.stdout
    assert json.loads(Path(os.fsdecode(out)).read_text())["00100010"]["vr"] == "PN"
    request = json.dumps({"op": "info", "input": os.fsdecode(source), "id": 9}).encode()
    (answer,) = _responses(_hub(["run"], request).stdout)
    assert answer["ok"] and answer["metadata"]["image"]["Rows"] == 128
    missing = _hub(["run", "--op", "info", "--input", folder + b"/gone\xff.dcm"], None)
    (gone,) = _responses(missing.stdout)
    assert gone["error"]["code"] == "input_not_found" and "\udcff" in gone["error"]["message"]


def test_python_backend_program_stream_is_just_as_robust():
    """`python -m dicom_hub.python_backend --stream` (the contract-native reference) follows the same rules."""
    stream = b"\n".join([_good(1), HAZARDS["byte 0xff in a line"], HAZARDS["lone surrogate in a path"], HAZARDS["100,000-deep JSON"], _good(3)]) + b"\n"
    env = {**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8"}
    run = subprocess.run([sys.executable, "-m", "dicom_hub.python_backend", "--stream"], input=stream, capture_output=True, env=env, timeout=300)
    responses = _responses(run.stdout)
    assert [r["id"] for r in responses] == [1, None, 2, None, 3]
    assert [r["ok"] for r in responses] == [True, False, False, False, True]
    assert {r["error"]["code"] for r in responses if r["error"]} == {"invalid_request"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_file_hazards_in_one_stream(tmp_path):
    """Every file-system and value hazard of the issue, each between two good lines of one stream:
    each line answered, in order, with its typed code (and nothing hangs on the FIFO)."""
    from pydicom import dcmread

    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    zeros = tmp_path / "zeros.dcm"
    zeros.write_bytes(b"\0" * 100)
    nan = dcmread(sample("CT_small.dcm"))
    nan.RescaleSlope = "NaN"
    nan.save_as(tmp_path / "nan.dcm")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(sample("CT_small.dcm"), folder / "ct.dcm")
    ct = "sample:CT_small.dcm"
    hazards = [
        ({"op": "info", "input": str(fifo)}, "invalid_request"),
        ({"op": "info", "input": "/dev/zero"}, "invalid_request"),
        ({"op": "info", "input": str(zeros)}, "not_dicom"),
        ({"op": "stats", "input": str(tmp_path / "nan.dcm")}, "decode_error"),
        ({"op": "to_json", "input": str(tmp_path / "nan.dcm"), "output": str(tmp_path / "nan.json")}, None),
        ({"op": "stats", "input": ct, "options": {"timeout": 0.001}}, "timeout"),
        ({"op": "info", "input": ct, "backend": "dcmtk", "options": {"timeout": 1e308}}, "invalid_request"),
        ({"op": "dump", "input": ct, "output": str(a_file / "out.txt")}, "output_error"),
        ({"op": "dump", "input": ct, "output": str(fifo), "options": {"overwrite": True}}, "invalid_request"),
        ({"op": "batch_decompress", "input": str(folder), "output": str(tmp_path / "x" / ".." / "in" / "out")}, "invalid_request"),
    ]
    lines = [_good(0)]
    for index, (request, _) in enumerate(hazards, start=1):
        lines += [json.dumps({**request, "id": f"h{index}"}).encode(), _good(index * 100)]
    run = _hub(["run", "--stream"], b"\n".join(lines) + b"\n")
    responses = _responses(run.stdout)
    assert [r["id"] for r in responses] == [json.loads(line)["id"] for line in lines]
    for index, (request, code) in enumerate(hazards, start=1):
        answer = responses[2 * index - 1]
        assert (answer["error"] or {}).get("code") == code, (request, answer["error"])
        assert responses[2 * index]["ok"]
    assert _strict_file(tmp_path / "nan.json")["00281053"]["Value"] == ["NaN"]
    assert _is_fifo(fifo) and not (folder / "out").exists()


def _strict_file(path: Path) -> dict:
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def _is_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(path.stat().st_mode)
