"""`python -m dicom_hub.python_backend`: the Python backend as a contract-native program.

It reads one request on stdin (or, with `--stream`, one per line) and answers with the response
JSON on stdout, running each request in-process through the dispatcher with backend "python";
`--capabilities` prints what the Python backend serves. This is the reference for the protocol
in `contract/README.md`, and it lets the test suite check the contract-native machinery
against the in-process adapter.

The program sits on top of the adapter layer (validation, dispatch, the response): it imports
`dicom_hub.adapters`, which never imports the Python backend back (the registry loads
`python_backend/adapter.py` by name).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dicom_hub.python_backend", description=__doc__.splitlines()[0])
    parser.add_argument("--capabilities", action="store_true", help="print the backend's capabilities as JSON")
    parser.add_argument("--stream", action="store_true", help="NDJSON: one request per line, one response line each")
    args = parser.parse_args(argv)
    if args.capabilities:
        from dicom_hub.adapters.contract_cli import capabilities_document
        from dicom_hub.adapters.registry import get_adapter

        print(json.dumps({**capabilities_document(get_adapter("python")), "stream": True}))
        return 0
    if args.stream:
        worst = 0
        for number, line in enumerate(sys.stdin.buffer, start=1):
            if line.strip():
                worst = max(worst, _answer(line, f"request line {number}"))
        return worst
    return _answer(sys.stdin.buffer.read(), "the request on stdin")


def _answer(data: bytes, where: str) -> int:
    """Dispatch one request with backend "python" and print its response line (UTF-8 bytes,
    whatever the locale); the exit code."""
    from dicom_hub.adapters.dispatch import dispatch, error_response, response_json
    from dicom_hub.contract.errors import HubError, exit_code_for
    from dicom_hub.contract.messages import request_text

    try:
        response = dispatch(_as_python_request(request_text(data, where)))
    except HubError as err:
        response = error_response(err)
    sys.stdout.buffer.write(response_json(response).encode("utf-8") + b"\n")
    sys.stdout.flush()
    return exit_code_for(response.error.code if response.error else None)


def _as_python_request(text: str) -> Any:
    """The request with `backend` set to python; text that is not an object goes on unchanged
    so the dispatcher answers it with `invalid_request`."""
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(request, dict):
        request["backend"] = "python"
    return request


if __name__ == "__main__":
    sys.exit(main())
