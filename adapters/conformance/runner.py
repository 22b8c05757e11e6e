"""Run specs against backends. Each (spec, backend) cell ends in one of five states:

pass         every expectation held
fail         an expectation did not hold (the first ones, with observed values, are kept)
unsupported  the backend declares it cannot serve this op or one of its options
unavailable  the backend is not installed here (with its install hint)
error        the backend crashed, timed out or answered outside the contract
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dicom_hub.adapters.conformance.checks import CHECKS, CheckContext, RunResult
from dicom_hub.adapters.conformance.peers import PeerError, Peers, substitute
from dicom_hub.adapters.conformance.specs import Spec
from dicom_hub.adapters.dispatch import dispatch
from dicom_hub.adapters.registry import get_adapter
from dicom_hub.contract.catalog import DISPATCHER_OPTIONS
from dicom_hub.contract.errors import HubError
from dicom_hub.contract.files import resolve_input_path

STATES = ("pass", "fail", "unsupported", "unavailable", "error")
# Ordered from best to worst: a cell "gets worse" when its index grows.
RANK = {"pass": 0, "unsupported": 1, "unavailable": 1, "fail": 2, "error": 3}


@dataclass
class Cell:
    spec: str
    backend: str
    status: str
    detail: str = ""
    duration_ms: float = 0.0
    output: str | None = None
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Runner:
    """Runs cells, caching each backend's answer so references are computed once.

    The network peers specs name are started on first use; `close()` (or leaving the `with`
    block) stops them.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.results: dict[tuple[str, str], RunResult] = {}
        self.peers = Peers()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.peers.close()

    def execute(self, spec: Spec, backend: str) -> RunResult:
        """The backend's answer to the spec's request (PeerError when its peer cannot start)."""
        key = (spec.id, backend)
        if key not in self.results:
            options = substitute(spec.options, self.peers.get(spec.peer)) if spec.peer else dict(spec.options)
            request: dict[str, Any] = {"op": spec.op, "backend": backend, "options": options, "id": f"{spec.id}@{backend}"}
            if "input" in spec.request:
                request["input"] = spec.request["input"]
            output = None
            if spec.output:
                folder = self.workdir / spec.id / backend
                folder.mkdir(parents=True, exist_ok=True)
                output = folder / ("out" + spec.output.get("suffix", "")) if spec.output["kind"] == "file" else folder / "out"
                request["output"] = str(output)
                request["options"]["overwrite"] = True
            response = json.loads(dispatch(request).to_json())
            self.results[key] = RunResult(response, output)
        return self.results[key]

    def reference(self, spec: Spec, backend: str) -> RunResult | None:
        try:
            adapter = get_adapter(backend)
        except HubError:
            return None
        if not adapter.available() or adapter.support(spec.op) is None:
            return None
        return self.execute(spec, backend)

    def run_cell(self, spec: Spec, backend: str) -> Cell:
        start = time.perf_counter()
        cell = self._run_cell(spec, backend)
        cell.duration_ms = round((time.perf_counter() - start) * 1000, 1)
        return cell

    def _run_cell(self, spec: Spec, backend: str) -> Cell:
        try:
            adapter = get_adapter(backend)
        except HubError as err:
            return Cell(spec.id, backend, "unavailable", err.message)
        support = adapter.support(spec.op)
        if support is None:
            return Cell(spec.id, backend, "unsupported", adapter.unsupported_reason(spec.op))
        refused = sorted(o for o in spec.options if o not in DISPATCHER_OPTIONS and not support.honours(o))
        if refused:
            return Cell(spec.id, backend, "unsupported", f"does not honour option(s) {', '.join(refused)}")
        if not adapter.available():
            availability = adapter.availability
            return Cell(spec.id, backend, "unavailable", f"{availability.reason}; install: {availability.hint}")
        try:
            result = self.execute(spec, backend)
        except PeerError as err:
            return Cell(spec.id, backend, "error", f"peer {spec.peer}: {err}")
        response = result.response
        output = str(result.output) if result.output else None
        error = response.get("error") or {}
        expects_error = any(e["check"] == "error_code" for e in spec.expect)
        if error.get("code") in ("unsupported_op", "unsupported_option"):
            return Cell(spec.id, backend, "unsupported", error["message"], output=output)
        if error.get("code") in ("internal_error",) or (error.get("code") == "timeout" and not expects_error):
            return Cell(spec.id, backend, "error", f"{error['code']}: {error['message']}", output=output)
        inputs = _input_paths(spec)
        ctx = CheckContext(result, inputs, lambda name: self.reference(spec, name))
        failures = []
        for expectation in spec.expect:
            try:
                problem = CHECKS[expectation["check"]](ctx, expectation)
            except Exception as exc:  # a check that cannot even look at the output is a failure of the cell
                problem = f"{expectation['check']}: cannot check: {type(exc).__name__}: {exc}"
            if problem:
                failures.append(f"{expectation['check']}: {problem}")
        if failures:
            return Cell(spec.id, backend, "fail", failures[0], output=output, failures=failures)
        return Cell(spec.id, backend, "pass", output=output)


def _input_paths(spec: Spec) -> list[Path]:
    raw = spec.request.get("input")
    if raw is None:
        return []
    try:
        return [resolve_input_path(p) for p in ([raw] if isinstance(raw, str) else raw)]
    except HubError:
        return []
