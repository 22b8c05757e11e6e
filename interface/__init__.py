"""The `dicom-hub` command line, a thin shell over `dicom_hub.adapters.dispatch`, and its Python
twin: `from dicom_hub.interface import run`."""

from __future__ import annotations

from typing import Any


def run(request: Any) -> dict[str, Any]:
    """Run one contract request in-process; see `dicom_hub.interface.api.run`."""
    from dicom_hub.interface.api import run as run_request

    return run_request(request)
