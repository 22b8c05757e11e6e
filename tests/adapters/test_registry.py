"""The adapter catalog is sorted, loadable, and every built-in adapter declares itself fully: its
op table names every op of the catalog, and a table that does not fit is refused when it loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import expect_error, expect_ok
from dicom_hub.adapters import registry
from dicom_hub.adapters.base import Adapter, Availability, OpSupport, Unsupported, supports
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome


def test_known_adapters_are_sorted():
    assert list(registry.KNOWN_ADAPTERS) == sorted(registry.KNOWN_ADAPTERS)


def test_preference_lists_every_builtin():
    assert set(registry.KNOWN_ADAPTERS) <= set(registry.PREFERENCE)


@pytest.mark.parametrize("name", sorted(registry.KNOWN_ADAPTERS))
def test_adapter_declares_itself(name):
    adapter = registry.get_adapter(name)
    assert isinstance(adapter, Adapter)
    assert adapter.name == name and adapter.language and adapter.toolkit and adapter.install_hint
    catalog = load_catalog()
    for op, support in adapter.capabilities().items():
        assert op in catalog, f"{name} declares unknown op {op}"
        if support.options is not None:
            unknown = support.options - catalog[op].option_names
            assert not unknown, f"{name}.{op} declares unknown options {unknown}"
    for op in adapter.unsupported:
        assert op in catalog and op not in adapter.capabilities()


@pytest.mark.parametrize("name", sorted(registry.KNOWN_ADAPTERS))
def test_every_catalog_op_is_served_or_stubbed_with_a_handler_or_a_reason(name):
    adapter = registry.get_adapter(name)
    assert set(adapter.op_table) == set(load_catalog())
    for op, entry in adapter.op_table.items():
        if isinstance(entry, OpSupport):
            assert callable(entry.handler), op
            assert getattr(entry.handler, "__self__", None) is adapter, f"{name}.{op}: the handler is not a method of this adapter"
        else:
            assert isinstance(entry, Unsupported) and entry.reason.strip(), op
            assert adapter.unsupported_reason(op) == entry.reason


def test_handlers_are_named_not_built_from_strings():
    """Handlers are looked up in the tables only: no `getattr(self, f"_{op}")` anywhere in the adapters."""
    adapters_dir = Path(registry.__file__).parent
    built = [f"{path.relative_to(adapters_dir)}:{n}" for path in sorted(adapters_dir.rglob("*.py")) for n, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"getattr\(self,\s*f[\"']", line)]
    assert not built, built


def test_every_op_has_a_python_implementation_or_is_declared():
    python = registry.get_adapter("python")
    missing = sorted(set(load_catalog()) - set(python.capabilities()) - set(python.unsupported))
    assert not missing, f"ops without a Python implementation: {missing}"


# -- the check when an adapter is loaded --------------------------------------------------------------
class TableAdapter(Adapter):
    """An adapter whose table the test writes: `info` served, every other op stubbed, then `changes`
    applied and the ops in `dropped` left out."""

    name = "table"
    language = "python"
    toolkit = "test"
    install_hint = "none"
    changes: dict = {}
    dropped: tuple = ()

    def probe(self) -> Availability:
        return Availability(True, "1.0")

    def declare_ops(self):
        table = {op: Unsupported("the test adapter serves nothing else") for op in load_catalog()}
        table["info"] = supports(handler=self.serve)
        return {op: entry for op, entry in {**table, **self.changes}.items() if op not in self.dropped}

    def serve(self, job: Job) -> Outcome:
        return Outcome(metadata={"served_by": "table"})


@pytest.fixture
def load_table(monkeypatch, register_adapter):
    """Load TableAdapter through the registry with the given changes to its table."""

    def load(changes=None, dropped=()):
        monkeypatch.setattr(TableAdapter, "changes", changes or {})
        monkeypatch.setattr(TableAdapter, "dropped", dropped)
        return register_adapter("table", f"{__name__}:TableAdapter")

    return load


def test_a_complete_table_loads_and_its_handler_serves(load_table):
    assert isinstance(load_table(), TableAdapter)
    assert expect_ok({"op": "info", "input": "sample:CT_small.dcm", "backend": "table"})["metadata"] == {"served_by": "table"}
    data = expect_error({"op": "dump", "input": "sample:CT_small.dcm", "backend": "table"}, "unsupported_op")
    assert "the test adapter serves nothing else" in data["error"]["message"]


@pytest.mark.parametrize(
    ("dropped", "changes", "expected"),
    [
        (("histogram", "wado"), {}, "no entry for op(s) histogram, wado"),
        ((), {"sharpen": Unsupported("no such op")}, "unknown op(s) sharpen"),
        ((), {"dump": supports("max_depth", "colour", handler=print)}, "dump: option(s) colour are not in the op's schema"),
        ((), {"to_image": supports("window", "frame", handler=print)}, "to_image: option(s) window are not in the op's schema"),
        ((), {"info": Unsupported("  ")}, "info: a stub without a reason"),
        ((), {"info": OpSupport(None, "_info")}, "info: the handler '_info' is not callable"),
        ((), {"info": "supported"}, "info: 'supported' is neither OpSupport nor Unsupported"),
    ],
    ids=["missing-op", "unknown-op", "unknown-option", "option-of-another-op", "stub-without-reason", "handler-by-name", "not-an-entry"],
)
def test_a_table_that_does_not_fit_the_catalog_is_refused_at_load(load_table, dropped, changes, expected):
    with pytest.raises(registry.AdapterValidationError) as err:
        load_table(changes, dropped)
    assert err.value.adapter == "table"
    assert err.value.code is ErrorCode.INTERNAL_ERROR
    assert expected in err.value.message, err.value.message
    assert "declare_ops()" in err.value.hint


def test_every_problem_is_named_at_once(load_table):
    with pytest.raises(registry.AdapterValidationError) as err:
        load_table({"sharpen": Unsupported("x"), "dump": supports("colour", handler=print)}, ("echo",))
    assert err.value.problems == ["no entry for op(s) echo", "unknown op(s) sharpen", "dump: option(s) colour are not in the op's schema"]


def test_a_request_for_a_refused_adapter_answers_with_the_problem(load_table):
    with pytest.raises(registry.AdapterValidationError):
        load_table({}, ("echo",))
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "table"}, "internal_error")
    assert "no entry for op(s) echo" in data["error"]["message"]


def test_a_stub_is_refused_with_its_reason_when_called_directly(load_table):
    adapter = load_table()
    with pytest.raises(HubError) as err:
        adapter.handle(Job(op="dump", inputs=(), output=None))
    assert err.value.code is ErrorCode.UNSUPPORTED_OP
    assert err.value.message == "the test adapter serves nothing else"


# -- C#: what the program serves is known without it ----------------------------------------------------
@pytest.fixture
def fresh_registry():
    """Adapters loaded anew for this test (e.g. under a changed environment), and again after it."""
    registry.get_adapter.cache_clear()
    yield
    registry.get_adapter.cache_clear()


def test_csharp_ops_are_known_while_the_program_is_missing(monkeypatch, tmp_path, fresh_registry):
    """`dicom-hub ops` never claims support from a missing program: the table says what the built
    program serves (tests/adapters/test_csharp.py compares it with the program's own answer)."""
    from dicom_hub.adapters.csharp.adapter import CSharpAdapter
    from dicom_hub.interface.commands.ops import _backend_support

    monkeypatch.setenv("DICOM_HUB_CSHARP_BUILD", str(tmp_path))
    monkeypatch.delenv("DICOM_HUB_CSHARP_BIN", raising=False)
    adapter = registry.get_adapter("csharp")
    assert isinstance(adapter, CSharpAdapter) and not adapter.available()
    assert adapter.support("echo") is None and adapter.unsupported_reason("echo") == "csharp does not implement 'echo'"
    assert adapter.support("validate") is None and adapter.unsupported_reason("validate") == "not implemented in the C# backend"
    assert adapter.support("transcode").honours("compression_ratio") and not adapter.support("transcode").honours("verify")
    states = {op: _backend_support(op)["csharp"] for op in ("echo", "validate", "info", "to_image")}
    assert states["echo"] == "unsupported: csharp does not implement 'echo'"
    assert states["validate"] == "unsupported: not implemented in the C# backend"
    assert states["info"] == "supported, options: none [not installed]"
    assert states["to_image"].startswith("supported, options: disable_modality_lut, ") and states["to_image"].endswith("[not installed]")
    # The dispatcher: an op the program does not serve is unsupported_op, one it serves is backend_unavailable.
    expect_error({"op": "validate", "input": "sample:CT_small.dcm", "backend": "csharp"}, "unsupported_op")
    data = expect_error({"op": "info", "input": "sample:CT_small.dcm", "backend": "csharp"}, "backend_unavailable")
    assert "40-csharp.sh" in data["error"]["message"]
