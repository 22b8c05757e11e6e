"""The message dataclasses, the published JSON Schemas and the run-time checks agree on every
example, and the schemas are generated from the dataclasses."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
from dicom_hub.adapters.conformance.specs import spec_problems, specs_dir
from dicom_hub.contract.catalog import get_op
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.messages import ErrorInfo, Request, Response, schema_problem
from dicom_hub.contract.schema_check import first_problem, published_check
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contract" / "examples"
SCHEMAS = ROOT / "contract" / "schemas"
CASES = [
    (kind, verdict, example)
    for kind in ("request", "response")
    for verdict, examples in json.loads((EXAMPLES / f"{kind}s.json").read_text()).items()
    for example in examples
]


def _schema(kind: str) -> dict:
    return json.loads((SCHEMAS / f"{kind}.schema.json").read_text())


def _reference_verdict(kind: str, example) -> bool:
    schema = _schema(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema).is_valid(example)


def _response(example: dict) -> Response:
    error = example["error"]
    return Response(**{**example, "error": ErrorInfo(**{**error, "code": ErrorCode(error["code"])}) if error else None})


@pytest.mark.parametrize(("kind", "verdict", "example"), CASES, ids=[f"{k}-{v}-{i}" for i, (k, v, _) in enumerate(CASES)])
def test_schema_and_runtime_checks_agree(kind, verdict, example):
    expected = verdict == "valid"
    assert _reference_verdict(kind, example) is expected  # jsonschema, the reference validator
    assert (schema_problem(kind, example) is None) is expected  # what the running program checks with
    if kind == "request":
        try:
            Request.from_data(example)
            accepted = True
        except HubError as err:
            assert err.code is ErrorCode.INVALID_REQUEST
            accepted = False
        assert accepted is expected


@pytest.mark.parametrize("example", json.loads((EXAMPLES / "requests.json").read_text())["valid"])
def test_a_valid_request_becomes_a_request_with_the_published_defaults(example):
    request = Request.from_data(example)
    properties = _schema("request")["properties"]
    for f in fields(Request):
        published_default = properties[f.name].get("default", {} if f.default_factory is not MISSING else None)
        assert getattr(request, f.name) == example.get(f.name, published_default), f.name


@pytest.mark.parametrize("example", json.loads((EXAMPLES / "responses.json").read_text())["valid"])
def test_a_response_gives_back_the_published_document(example):
    response = _response(example)
    assert response.problem() is None
    assert json.loads(response.to_json()) == example
    assert list(response.as_dict()) == list(_schema("response")["properties"]), "fields in the published order"


def test_an_ok_response_with_an_error_is_refused():
    example = json.loads((EXAMPLES / "responses.json").read_text())["valid"][1]
    assert schema_problem("response", {**example, "ok": True}) is not None
    assert _response({**example, "ok": True}).problem() is not None


def test_published_schemas_are_generated_from_the_dataclasses():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_schemas.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_schemas_carry_contract_version():
    for name in ("request", "response"):
        schema = _schema(name)
        assert schema["x-contract-version"] == "1.0"
        assert schema["$schema"].endswith("2020-12/schema")


def test_the_running_program_never_imports_a_model_library():
    """The dataclasses are the model: pydantic is no dependency, at run time or anywhere."""
    code = "import sys; from dicom_hub.interface.cli import main; main(['run', '--op', 'info', '--input', 'sample:CT_small.dcm']); print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'jsonschema')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


# One formatter of schema problems: the field's dotted path, then the rule it breaks.


def test_a_request_problem_names_the_field():
    with pytest.raises(HubError) as info:
        Request.from_data({"op": "info", "backend": ""})
    assert info.value.message == "backend: must be longer than or equal to 1 characters"
    with pytest.raises(HubError) as info:
        Request.from_data({"input": "a.dcm"})
    assert info.value.message == "request: must contain ['op'] properties"


def test_a_response_problem_names_the_field():
    example = json.loads((EXAMPLES / "responses.json").read_text())["valid"][0]
    assert schema_problem("response", {**example, "duration_ms": -1}) == "duration_ms: must be bigger than or equal to 0"


def test_an_option_problem_names_the_option_and_the_op():
    with pytest.raises(HubError) as info:
        get_op("dump").validate_options({"max_depth": "deep"})
    assert info.value.message == "option 'max_depth' of op 'dump' must be integer"


def test_a_spec_problem_names_the_field():
    spec = json.loads(next(specs_dir().glob("*.json")).read_text())
    spec = spec[0] if isinstance(spec, list) else spec
    assert spec_problems(spec) == []
    assert spec_problems({**spec, "expect": []}) == ["expect: must contain at least 1 items"]
    assert spec_problems({**spec, "surprise": 1}) == ["spec: must not contain {'surprise'} properties"]


def test_spec_check_agrees_with_jsonschema():
    """Specs are checked by the run-time checker (fastjsonschema): it must judge like jsonschema."""
    reference = Draft202012Validator(_schema("spec"))
    shipped = []
    for path in sorted(specs_dir().glob("*.json")):
        documents = json.loads(path.read_text())
        shipped += documents if isinstance(documents, list) else [documents]
    broken = [{**shipped[0], key: value} for key, value in (("id", 5), ("expect", [{"check": "nope"}]), ("request", {}), ("peer", 1))]
    for spec in shipped + broken:
        expected = spec not in broken
        assert reference.is_valid(spec) is expected
        assert (first_problem(published_check("spec"), spec, "spec") is None) is expected, spec
