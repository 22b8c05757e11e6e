"""The dispatcher: backend resolution, capability checks, and errors that are always responses."""

from __future__ import annotations

import pytest
from conftest import expect_error, expect_ok, run_request
from dicom_hub.adapters.base import Adapter, Availability, Unsupported, supports
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome


class FakeAdapter(Adapter):
    """Serves `info` with option-free support and `dump` with max_depth only."""

    name = "fake"
    language = "python"
    toolkit = "fake"
    ok = True
    behaviour = "ok"

    def probe(self) -> Availability:
        return Availability(True, "1.0") if self.ok else Availability(False, reason="fake-tool not found", hint="apt-get install fake")

    def declare_ops(self):
        stubs = {op: Unsupported(f"fake does not implement {op!r}") for op in load_catalog()}
        return {
            **stubs,
            "info": supports(handler=self.serve),
            "dump": supports("max_depth", handler=self.serve),
            "to_json": Unsupported("fake cannot write JSON"),
        }

    def serve(self, job: Job) -> Outcome:
        if self.behaviour == "crash":
            raise ZeroDivisionError("boom")
        if self.behaviour == "ghost-output":
            return Outcome(output_files=["/nonexistent/ghost.png"])
        if self.behaviour == "error":
            raise HubError(ErrorCode.BACKEND_ERROR, "fake failed", stderr="E: broken", returncode=3)
        return Outcome(metadata={"served_by": "fake", "options": job.options})


@pytest.fixture
def fake(register_adapter):
    return register_adapter("fake", f"{__name__}:FakeAdapter", "install fake")


def test_auto_prefers_python():
    data = expect_ok({"op": "info", "input": "sample:CT_small.dcm"})
    assert data["backend"] == "python"
    assert data["metadata"]["patient"]["PatientID"] == "1CT1"


def test_named_backend_answers(fake):
    data = expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake", "id": "r1"})
    assert (data["backend"], data["id"], data["metadata"]["served_by"]) == ("fake", "r1", "fake")


def test_unsupported_op_gives_the_reason(fake):
    data = expect_error({"op": "to_json", "input": "sample:CT_small.dcm", "backend": "fake"}, "unsupported_op")
    assert "fake cannot write JSON" in data["error"]["message"]


def test_unsupported_option_is_never_ignored(fake):
    data = expect_error({"op": "dump", "input": "sample:CT_small.dcm", "backend": "fake", "options": {"max_value_length": 20}}, "unsupported_option")
    assert "max_value_length" in data["error"]["message"]
    expect_ok({"op": "dump", "input": "sample:CT_small.dcm", "backend": "fake", "options": {"max_depth": 1, "timeout": 5}})


def test_unavailable_backend_names_the_install(fake):
    fake.__dict__["availability"] = Availability(False, reason="fake-tool not found", hint="apt-get install fake")
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"}, "backend_unavailable")
    assert "apt-get install fake" in data["error"]["message"]


def test_unknown_backend_lists_known_ones():
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "nosuch"}, "invalid_request")
    assert "python" in data["error"]["hint"]


def test_language_alias_resolves():
    assert expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": "python"})["backend"] == "python"


def test_backend_errors_keep_tool_output(fake):
    fake.behaviour = "error"
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"}, "backend_error")
    assert (data["stderr"], data["returncode"], data["backend"]) == ("E: broken", 3, "fake")


def test_a_crash_is_an_internal_error_response(fake):
    fake.behaviour = "crash"
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake", "id": 9}, "internal_error")
    assert "ZeroDivisionError" in data["error"]["message"] and data["id"] == 9


def test_outputs_that_do_not_exist_fail_the_response(fake):
    fake.behaviour = "ghost-output"
    expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "fake"}, "backend_error")


@pytest.mark.parametrize(
    ("request_data", "code"),
    [
        ({"op": "info", "input": "sample:CT_small.dcm", "contract": "2.0"}, "invalid_request"),
        ({"op": "nosuchop"}, "unknown_op"),
        ({"op": "info"}, "invalid_request"),
        ({"op": "info", "input": "sample:CT_small.dcm", "options": {"bogus": 1}}, "invalid_request"),
        ({"op": "info", "input": "sample:CT_small.dcm", "output": "/tmp/x.txt"}, "invalid_request"),
        ({"input": "sample:CT_small.dcm"}, "invalid_request"),
        ({"op": "info", "input": "sample:nope.dcm"}, "input_not_found"),
        ({"op": "info", "input": "sample:README.txt"}, "not_dicom"),
        ({"op": "info", "input": "sample:MR_truncated.dcm"}, "decode_error"),
    ],
)
def test_bad_requests_are_typed(request_data, code):
    data = expect_error(request_data, code)
    assert data["error"]["hint"], "every error says how to fix it"


def test_request_as_text_and_garbage():
    assert run_request('{"op": "info", "input": "sample:CT_small.dcm"}')["ok"]
    assert run_request("{not json")["error"]["code"] == "invalid_request"
    assert run_request("[1, 2]")["error"]["code"] == "invalid_request"
