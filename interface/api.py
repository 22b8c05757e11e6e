"""dicom-hub from Python: the same requests, validation and errors as `dicom-hub run`, in-process.

    from dicom_hub.interface import run
    response = run({"op": "info", "input": "scan.dcm"})
    if response["ok"]:
        print(response["metadata"]["patient"])

The answer is the response document as the CLI would print it (a plain dict that fits
`contract/schemas/response.schema.json`); a failure is an answer with `ok: false` and `error`,
never an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


def run(request: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """Run one request (a dict, or its JSON text) and return the response document."""
    from dicom_hub.adapters.dispatch import dispatch, response_json

    raw = dict(request) if isinstance(request, Mapping) else request
    return json.loads(response_json(dispatch(raw)))


def run_many(requests: Iterable[Mapping[str, Any] | str | bytes]) -> Iterator[dict[str, Any]]:
    """One response per request, in order (the Python side of `dicom-hub run --stream`)."""
    for request in requests:
        yield run(request)
