"""Every corpus file x every backend x info, dump, to_json, validate, stats, to_image, decompress.

Each cell must keep the state `expected.json` records for it (`ok`, or the error code of a typed
refusal), and every ok answer must be right (see `corpus_matrix.verify`). A changed cell fails:
a new failure, another code, or a refusal that now passes. After a deliberate change, rerun with
DICOM_HUB_CORPUS_UPDATE=1 to rewrite the record (a wrong ok is never recordable).
"""

from __future__ import annotations

from pathlib import Path

import corpus_matrix as cm
import pytest
from conftest import REQUIRE_BACKENDS, missing, require_backend
from corpus_files import GENERATED_NAMES, generated_file, pydicom_data_files
from dicom_hub.adapters.registry import get_adapter

REAL = pydicom_data_files()
NAMES = [*REAL, *GENERATED_NAMES]
_observed: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def _record_when_updating():
    yield
    if cm.UPDATE and _observed:
        cells = cm.load_expected()
        for name, states in _observed.items():
            cells.setdefault(name, {}).update(states)
        cm.save_expected(cells)


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus-generated")


@pytest.fixture(scope="module")
def backends() -> list[str]:
    """The backends to run: all of them in CI; elsewhere the available ones."""
    if not REAL:
        missing("pydicom-data (pip install -e '.[dev]')")
    if REQUIRE_BACKENDS:
        for backend in cm.BACKENDS:
            require_backend(backend)
    return [b for b in cm.BACKENDS if get_adapter(b).availability.ok]


@pytest.mark.parametrize("name", NAMES)
def test_corpus_file(name: str, backends: list[str], generated_dir: Path, tmp_path: Path) -> None:
    expected = cm.load_expected().get(name, {})
    observed: dict[str, str] = {}
    if not cm.FULL and not cm.in_default_run(name, REAL.get(name, Path())):
        pytest.skip("outside the default corpus run; DICOM_HUB_CORPUS_FULL=1 runs it")
    if name.startswith("gen:"):
        path, state = generated_file(generated_dir, name)
        observed["python generate"] = state
    else:
        path = REAL[name]
    cells: list[cm.Cell] = []
    truth = cm.truth_of(path) if path is not None else None
    if path is not None:
        for backend in backends:
            if not cm.runs_backend(name, backend):
                continue
            out_dir = tmp_path / backend.replace("-", "_")
            out_dir.mkdir()
            for op in cm.OPS:
                cell = cm.run_cell(name, backend, op, path, out_dir)
                if cell.state == "ok":
                    cell.problems = cm.verify(cell, truth)
                cells.append(cell)
                observed[cell.key] = cell.state
    _observed[name] = {key: state for key, state in observed.items() if key not in {c.key for c in cells if c.problems}}  # a wrong ok is never recorded
    cm.report(cells)

    wrong = [f"{c.key}: ok but wrong: {'; '.join(c.problems)}" for c in cells if c.problems]
    wrong += cm.disagreements(cells, truth) if truth is not None else []
    changed = [
        f"{key}: {expected.get(key, 'not recorded')} -> {state}" + _why(cells, key)
        for key, state in observed.items()
        if expected.get(key) != state
    ]
    internal = [f"{c.key}: internal_error: {c.response['error']['message']}" for c in cells if c.state == "internal_error"]
    assert not wrong and not internal, "\n".join(wrong + internal)
    if not cm.UPDATE:
        assert not changed, "cells changed (rerun with DICOM_HUB_CORPUS_UPDATE=1 if deliberate):\n" + "\n".join(changed)


def _why(cells: list[cm.Cell], key: str) -> str:
    cell = next((c for c in cells if c.key == key), None)
    if cell is None or cell.state == "ok":
        return ""
    return f" ({cell.response['error']['message'][:200]})"
