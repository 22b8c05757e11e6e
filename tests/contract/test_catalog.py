"""The op catalog is well-formed data, and option validation names what is wrong."""

from __future__ import annotations

import pytest
from dicom_hub.contract.catalog import INPUT_KINDS, OUTPUT_KINDS, get_op, load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from jsonschema import Draft202012Validator

CATALOG = load_catalog()


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_entry_is_well_formed(name):
    spec = CATALOG[name]
    assert spec.input in INPUT_KINDS
    assert spec.output in OUTPUT_KINDS
    assert spec.summary
    Draft202012Validator.check_schema(spec.options_schema)
    assert spec.options_schema.get("additionalProperties") is False, "unknown options must be rejected"
    assert "timeout" in spec.option_names
    assert ("overwrite" in spec.option_names) == (spec.output != "none")
    for option, schema in spec.options_schema["properties"].items():
        if "default" in schema:
            assert Draft202012Validator(schema).is_valid(schema["default"]), f"{name}.{option} default is not valid"


def test_unknown_option_is_named():
    with pytest.raises(HubError) as info:
        get_op("info").validate_options({"colour": "red"})
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert "'colour'" in info.value.message


def test_wrong_option_type_is_named():
    with pytest.raises(HubError) as info:
        get_op("dump").validate_options({"max_depth": "deep"})
    assert info.value.code is ErrorCode.INVALID_REQUEST
    assert "max_depth" in info.value.message


def test_unknown_op_suggests_close_names():
    with pytest.raises(HubError) as info:
        get_op("infoo")
    assert info.value.code is ErrorCode.UNKNOWN_OP
    assert "info" in info.value.hint


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_runtime_validator_agrees_with_jsonschema(name):
    """Options are checked at run time by fastjsonschema (fast start-up); it must judge like jsonschema."""
    spec = CATALOG[name]
    reference = Draft202012Validator(spec.options_schema)
    cases = [spec.defaults, {}]
    for option in spec.option_names:
        cases += [{option: {"not": "valid"}}, {option: None}, {option: -1}, {option: "text"}, {option: True}]
    for options in cases:
        expected = reference.is_valid(options)
        try:
            spec.validate_options(dict(options))
            verdict = True
        except HubError:
            verdict = False
        assert verdict is expected, f"{name} options {options}: jsonschema says {expected}"
