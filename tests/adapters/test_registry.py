"""The adapter catalog is sorted, loadable, and every built-in adapter declares itself fully."""

from __future__ import annotations

import pytest
from dicom_hub.adapters import registry
from dicom_hub.adapters.base import Adapter
from dicom_hub.contract.catalog import load_catalog


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


def test_every_op_has_a_python_implementation_or_is_declared():
    python = registry.get_adapter("python")
    missing = sorted(set(load_catalog()) - set(python.capabilities()) - set(python.unsupported))
    assert not missing, f"ops without a Python implementation: {missing}"
