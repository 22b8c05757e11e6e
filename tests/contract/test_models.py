"""The pydantic models and the published JSON Schemas agree on every example, and stay in sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dicom_hub.contract.messages import schema_problem
from dicom_hub.contract.models import Request, Response
from jsonschema import Draft202012Validator
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contract" / "examples"
SCHEMAS = ROOT / "contract" / "schemas"
CASES = [
    (model, kind, verdict, example)
    for model, kind in ((Request, "request"), (Response, "response"))
    for verdict, examples in json.loads((EXAMPLES / f"{kind}s.json").read_text()).items()
    for example in examples
]


def _schema_verdict(kind: str, example) -> bool:
    schema = json.loads((SCHEMAS / f"{kind}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema).is_valid(example)


def _model_verdict(model, example) -> bool:
    try:
        model.model_validate(example)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("model", "kind", "verdict", "example"), CASES, ids=[f"{k}-{v}-{i}" for i, (_, k, v, _) in enumerate(CASES)])
def test_model_and_schema_agree(model, kind, verdict, example):
    expected = verdict == "valid"
    assert _model_verdict(model, example) is expected
    assert _schema_verdict(kind, example) is expected
    # what the running program checks with (fastjsonschema over the published schema)
    assert (schema_problem(kind, example) is None) is expected


def test_published_schemas_are_generated_from_models():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_schemas.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_schemas_carry_contract_version():
    for name in ("request", "response"):
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        assert schema["x-contract-version"] == "1.0"
        assert schema["$schema"].endswith("2020-12/schema")
