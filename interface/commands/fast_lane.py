"""The fast lane of `dicom-hub run`: a plain `info` request answered without the dispatcher.

Why: the dispatcher's path imports pydicom (~0.45 s, for numpy and every pixel plugin) before
the first answer, more than a whole stream of 1,000 `info` requests should take. A plain `info`
request (a file input, backend auto or python, no options, no output) has only one possible
answer path: the python backend, which answers from the bytes-level reader (`fast_info`) when
the file is a plain one. This lane takes that path directly, with the same checks of the input
(`contract.files`) and the same response, so it never imports pydicom, the adapters or a JSON
Schema validator.

It takes only requests it can tell are valid at a glance (exact types, known fields, no lone
surrogate), and steps aside (None) on everything else, on every refusal and on every file
`fast_info` does not read: the dispatcher then answers as it always has, errors included. So
every request the schema refuses is refused by the same code, with the same words. The tests
compare this lane's answers with the dispatcher's on many variants of requests and files.
"""

from __future__ import annotations

import re
import time
from typing import Any

from dicom_hub.contract import CONTRACT_VERSION

_FIELDS = frozenset({"contract", "id", "op", "input", "output", "options", "backend"})  # request.schema.json
_CONTRACT = re.compile(r"[0-9]+\.[0-9]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_BACKENDS = ("auto", "python")  # auto takes python first (registry.PREFERENCE), which serves info with any option


def answer(request: Any, indent: int | None = None) -> str | None:
    """The response JSON of a plain `info` request (parsed JSON), or None when the dispatcher must
    answer it."""
    start = time.perf_counter()
    if not _plain_info(request):
        return None
    # Imported for a plain info request only: every other request (a batch op) pays nothing here.
    from dicom_hub.contract.files import resolve_inputs
    from dicom_hub.contract.messages import Response
    from dicom_hub.python_backend.fast_info import fast_info

    try:
        (path,) = resolve_inputs(request["input"], "file", "info")
        metadata = fast_info(path)  # it reads only files with the DICM marker: check_dicom_start passes them
    except Exception:  # HubError: the dispatcher refuses it in its own words; else it reports what went wrong
        return None
    if metadata is None:
        return None
    response = Response(
        contract=CONTRACT_VERSION,
        id=request.get("id"),
        op="info",
        backend="python",
        ok=True,
        returncode=0,
        stdout="",
        stderr="",
        output_files=[],
        metadata=metadata,
        duration_ms=round((time.perf_counter() - start) * 1000, 3),
        error=None,
    )
    return response.to_json(indent)


def _plain_info(request: Any) -> bool:
    """A valid `info` request (by request.schema.json and the info option schema) that the
    python backend answers: anything else is for the dispatcher."""
    if type(request) is not dict or request.get("op") != "info" or not request.keys() <= _FIELDS:
        return False
    path, ident, options = request.get("input"), request.get("id"), request.get("options", {})
    if type(path) is not str or not path or _SURROGATE.search(path):
        return False
    if not (ident is None or type(ident) is int or (type(ident) is str and not _SURROGATE.search(ident))):
        return False
    if type(options) is not dict or options or request.get("output") is not None:
        return False
    return request.get("backend", "auto") in _BACKENDS and _known_contract(request.get("contract"))


def _known_contract(contract: Any) -> bool:
    """No contract, or this major version (as `dispatch.parse_request` compares them)."""
    if contract is None:
        return True
    return type(contract) is str and bool(_CONTRACT.fullmatch(contract)) and contract.split(".")[0] == CONTRACT_VERSION.split(".")[0]
