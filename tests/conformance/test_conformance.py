"""Every spec of contract/specs against every registered backend, one test id per cell.

pass -> passes; fail/error -> fails (unless contract/expected-matrix.json records that state, in
which case it is an expected failure that must keep failing); unsupported -> skipped with the
adapter's reason (never a pass); unavailable -> skipped locally, failed in CI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import missing
from dicom_hub.adapters.conformance.runner import RANK, Runner
from dicom_hub.adapters.conformance.specs import load_specs
from dicom_hub.adapters.registry import KNOWN_ADAPTERS

SPECS = load_specs()
BACKENDS = sorted(KNOWN_ADAPTERS)
EXPECTED_PATH = Path(__file__).resolve().parents[2] / "contract" / "expected-matrix.json"
EXPECTED: dict = json.loads(EXPECTED_PATH.read_text()).get("cells", {}) if EXPECTED_PATH.exists() else {}


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Iterator[Runner]:
    with Runner(tmp_path_factory.mktemp("conformance")) as runner:  # stops the network peers at the end
        yield runner


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_cell(spec, backend, runner):
    cell = runner.run_cell(spec, backend)
    recorded = EXPECTED.get(spec.id, {}).get(backend)
    if cell.status == "unavailable":
        missing(f"backend {backend}: {cell.detail}")
    if cell.status == "unsupported":
        if recorded not in (None, "unsupported"):
            pytest.fail(f"recorded as {recorded}, but the backend now declares it unsupported: {cell.detail}")
        pytest.skip(f"unsupported: {cell.detail}")
    if recorded == "unsupported":
        pytest.fail(f"recorded as unsupported but the backend served it ({cell.status}); update contract/expected-matrix.json")
    if cell.status in ("fail", "error"):
        if recorded is not None and RANK[cell.status] <= RANK[recorded]:
            pytest.xfail(f"known {recorded} (contract/expected-matrix.json): {cell.detail}")
        pytest.fail(f"{cell.status}: " + "\n".join(cell.failures or [cell.detail]))
    assert cell.status == "pass"
    if recorded in ("fail", "error"):
        pytest.fail(f"recorded as {recorded} but now passes: update contract/expected-matrix.json")
