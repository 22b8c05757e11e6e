"""Every real backend that writes a DICOM file writes it to the dispatcher's staging file, which
takes the output's name once verified: the answer, the folder and the messages know only the
output's name, and `overwrite` replaces the old file in one step."""

from __future__ import annotations

import json

import pytest
from conftest import backend_request, expect_error, expect_ok, require_backend
from pydicom import dcmread

CASES = [
    ("transcode", {"transfer_syntax": "explicit"}, ["python", "dcmtk", "gdcm", "dicom-rs", "pixelmed", "csharp"]),
    ("anonymize", {}, ["python", "dcmtk", "gdcm", "pixelmed", "csharp"]),
    ("modify_tags", {"set": {"PatientName": "Staged^Test"}}, ["python", "dcmtk", "gdcm", "csharp"]),
    ("from_json", {}, ["python", "pixelmed"]),
]
PARAMS = [pytest.param(op, options, backend, id=f"{op}-{backend}") for op, options, backends in CASES for backend in backends]


@pytest.fixture(scope="module")
def json_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("json") / "MR_small.json"
    expect_ok(backend_request("python", "to_json", "sample:MR_small.dcm", path))
    return path


@pytest.mark.parametrize(("op", "options", "backend"), PARAMS)
def test_the_output_takes_its_name_once_verified(tmp_path, json_input, op, options, backend):
    require_backend(backend)
    source = str(json_input) if op == "from_json" else "sample:MR_small.dcm"
    out = tmp_path / "out.dcm"
    out.write_bytes(b"the user's previous file")
    expect_error(backend_request(backend, op, source, out, **options), "output_exists")
    data = expect_ok(backend_request(backend, op, source, out, overwrite=True, **options))
    assert data["output_files"] == [str(out)]
    assert ".staged" not in json.dumps(data)
    assert [p.name for p in tmp_path.iterdir()] == ["out.dcm"], "no staging file or copy is left"
    assert dcmread(out).SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # MR: the new file replaced the old one


@pytest.mark.parametrize("backend", ["python", "dcmtk"])
def test_a_side_file_on_the_output_is_refused_before_any_backend_runs(tmp_path, backend):
    """The backend sees a staging path; the check against the user's output happens first."""
    require_backend(backend)
    out = tmp_path / "out.dcm"
    data = expect_error(backend_request(backend, "anonymize", "sample:CT_small.dcm", out, mapping_file=str(out)), "invalid_request")
    assert f"options.mapping_file {out} is the output" in data["error"]["message"]
    assert list(tmp_path.iterdir()) == []
