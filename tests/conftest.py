"""Shared fixtures: run requests through the real dispatcher, sample paths, synthetic data, and
the rule that a missing backend is a skip on a developer machine but a failure in CI."""

from __future__ import annotations

import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from dicom_hub.adapters.dispatch import dispatch
from dicom_hub.contract.files import resolve_sample
from peers import hub_scp, hub_scp_factory, orthanc, orthanc_web, silent_peer, wlmscpfs  # noqa: F401 - real DICOM peers on 127.0.0.1 (see tests/peers.py)
from tls_pki import tls_pki  # noqa: F401 - a throw-away CA and certificates (see tests/tls_pki.py)

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "contract" / "schemas"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_BACKENDS = os.environ.get("DICOM_HUB_REQUIRE_BACKENDS") == "1"


@cache
def response_validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads((SCHEMA_DIR / "response.schema.json").read_text()))


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Dispatch a request and return the response as JSON data, checked against the published schema."""
    response = dispatch(request)
    data = json.loads(response.to_json())
    errors = list(response_validator().iter_errors(data))
    assert not errors, f"response violates the schema: {errors[0].message}"
    return data


def expect_ok(request: dict[str, Any]) -> dict[str, Any]:
    data = run_request(request)
    assert data["ok"], f"{request['op']} failed: {data['error']}\nstderr: {data['stderr'][-2000:]}"
    return data


def expect_error(request: dict[str, Any], code: str) -> dict[str, Any]:
    data = run_request(request)
    assert not data["ok"], f"{request['op']} should have failed with {code}"
    assert data["error"]["code"] == code, f"expected {code}, got {data['error']}"
    assert data["error"]["message"]
    return data


def backend_request(backend: str, op: str, input=None, output=None, **options) -> dict[str, Any]:
    """A request for one named backend; input/output only when given."""
    request: dict[str, Any] = {"op": op, "backend": backend, "options": options}
    if input is not None:
        request["input"] = input
    if output is not None:
        request["output"] = str(output)
    return request


def missing(what: str) -> None:
    """A backend or tool is missing: fail in CI (DICOM_HUB_REQUIRE_BACKENDS=1), skip elsewhere."""
    if REQUIRE_BACKENDS:
        pytest.fail(f"{what} is missing; CI installs every backend with scripts/setup.sh")
    pytest.skip(f"{what} is missing (run scripts/setup.sh)")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"tool {name!r}")
    return path


def require_backend(name: str):
    from dicom_hub.adapters.registry import get_adapter

    adapter = get_adapter(name)
    if not adapter.available():
        missing(f"backend {name!r} ({adapter.availability.reason})")
    return adapter


def sample(name: str) -> Path:
    return resolve_sample(name)


@pytest.fixture
def shared_ct_series() -> Path:
    path = SHARED_DATA / "cerebrix-ct"
    if not path.is_dir():
        pytest.skip("../shared/data/cerebrix-ct is not present (optional reference data)")
    return path


@pytest.fixture
def register_adapter(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`register_adapter(name, "module:Class")` puts a test adapter in the registry, as an entry point
    would, and returns it loaded (the registry's checks run); the registry cache is cleared on both
    ends so no test sees another's adapters."""
    from dicom_hub.adapters import registry

    def register(name: str, target: str, hint: str = "none") -> Any:
        monkeypatch.setitem(registry.KNOWN_ADAPTERS, name, registry.KnownAdapter(target, hint))
        registry.get_adapter.cache_clear()
        return registry.get_adapter(name)

    yield register
    registry.get_adapter.cache_clear()
