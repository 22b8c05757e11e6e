"""The whole matrix: every selected spec x backend, run in parallel threads, and its comparison
with the recorded state in `contract/expected-matrix.json`."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dicom_hub.adapters.conformance.runner import RANK, Cell, Runner
from dicom_hub.adapters.conformance.specs import Spec


class LockedRunner(Runner):
    """A Runner whose cached results are computed once even when cells run concurrently."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def execute(self, spec: Spec, backend: str):
        with self._guard:
            lock = self._locks.setdefault((spec.id, backend), threading.Lock())
        with lock:
            return super().execute(spec, backend)


def run_matrix(specs: list[Spec], backends: list[str], workdir: Path, jobs: int = 2, progress=None) -> tuple[list[Cell], Runner]:
    """Run every cell; subprocess backends overlap well in threads, pydicom work holds the GIL.
    The network peers are stopped when the last cell is done (or on any error)."""
    pairs = [(spec, backend) for spec in specs for backend in backends]
    with LockedRunner(workdir) as runner, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        cells = []
        for cell in pool.map(lambda pair: runner.run_cell(*pair), pairs):
            cells.append(cell)
            if progress:
                progress(cell)
    return cells, runner


@dataclass(frozen=True)
class Drift:
    """A cell whose state differs from the record in a way that must be looked at."""

    spec: str
    backend: str
    recorded: str
    observed: str
    detail: str

    @property
    def kind(self) -> str:
        if self.recorded == "unsupported" and self.observed != "unsupported":
            return "recorded unsupported, now served"
        return "regression"

    def __str__(self) -> str:
        return f"{self.kind}: {self.spec} x {self.backend}: {self.recorded} -> {self.observed} ({self.detail})"


def load_expected(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_text()).get("cells", {}) if path.exists() else {}


def compare_with_expected(cells: list[Cell], expected: dict[str, dict[str, str]]) -> list[Drift]:
    """Cells worse than recorded, and recorded-unsupported cells the backend now serves.

    A cell with no record must pass (or be unsupported/unavailable): new specs start clean.
    """
    drifts = []
    for cell in cells:
        recorded = expected.get(cell.spec, {}).get(cell.backend)
        if cell.status == "unavailable":
            continue  # not a behaviour of the backend; CI's install step answers for it
        if recorded is None:
            if cell.status in ("fail", "error"):
                drifts.append(Drift(cell.spec, cell.backend, "none", cell.status, cell.detail))
            continue
        if recorded == "unsupported" and cell.status != "unsupported":
            drifts.append(Drift(cell.spec, cell.backend, recorded, cell.status, cell.detail or "served"))
        elif RANK[cell.status] > RANK[recorded]:
            drifts.append(Drift(cell.spec, cell.backend, recorded, cell.status, cell.detail))
    return drifts


def expected_document(cells: list[Cell], previous: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The record to commit: every non-passing cell's state (passing cells need no record).

    The records in `previous` of cells not run this time are kept, so a run restricted to some
    specs or backends updates their cells only.
    """
    run = {(cell.spec, cell.backend) for cell in cells if cell.status != "unavailable"}  # an uninstalled backend says nothing new
    kept = [(spec, backend, state) for spec, row in (previous or {}).items() for backend, state in row.items() if (spec, backend) not in run]
    observed = [(cell.spec, cell.backend, cell.status) for cell in cells if cell.status in ("fail", "error", "unsupported")]
    records: dict[str, dict[str, str]] = {}
    for spec, backend, state in sorted(kept + observed):
        records.setdefault(spec, {})[backend] = state
    return {
        "$comment": "Known state of the conformance matrix: cells not listed must pass. Regenerate with `dicom-hub conformance --update-expect` and review the diff.",
        "cells": records,
    }
