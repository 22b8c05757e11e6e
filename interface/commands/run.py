"""`dicom-hub run`: validate, dispatch, print the response JSON (one line per request with --stream)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from dicom_hub.contract.errors import ErrorCode, HubError, exit_code_for
from dicom_hub.contract.messages import request_text

if TYPE_CHECKING:
    from dicom_hub.contract.messages import Response


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", nargs="?", help="request JSON file, or - for stdin (the default without --op)")
    parser.add_argument("--request-file", help="request JSON file (same as the positional argument)")
    parser.add_argument("--stream", action="store_true", help="NDJSON: one request per stdin line, one response line each, in order")
    parser.add_argument("--jobs", type=_jobs, default=None, metavar="N", help="--stream: answer up to N requests at once in worker processes (default: one per core; 1: one by one)")
    parser.add_argument("--unordered", action="store_true", help="--stream: write each response as soon as it is ready, not in input order (match them by id)")
    parser.add_argument("--op", help="operation name (see `dicom-hub ops`)")
    parser.add_argument("--input", action="append", metavar="PATH", help="input path or sample:<name>; repeat for several files")
    parser.add_argument("--output", help="output file or folder")
    parser.add_argument("--options", default=None, metavar="JSON", help='op options as a JSON object, e.g. \'{"frame": 0}\'')
    parser.add_argument("--backend", default=None, help="backend name, language alias, or auto (default)")
    parser.add_argument("--id", default=None, help="request id echoed in the response")
    parser.add_argument("--pretty", action="store_true", help="indent the response JSON (the default on a terminal)")


def run(args: argparse.Namespace) -> int:
    from dicom_hub.interface.commands import fast_lane

    if args.stream:
        return _stream(args.jobs or default_jobs(), not args.unordered)
    indent = 2 if args.pretty or sys.stdout.isatty() else None
    try:
        request = _parsed(_request_from_args(args))
    except HubError as err:
        from dicom_hub.adapters.dispatch import error_response

        return _write_response(error_response(err, {"op": args.op, "id": args.id}), indent)
    fast = fast_lane.answer(request, indent)  # a plain info request: answered without pydicom
    if fast is not None:
        _write_line(fast)
        return 0
    from dicom_hub.adapters.dispatch import dispatch

    return _write_response(dispatch(request), indent)


def _write_response(response: Response, indent: int | None) -> int:
    """Print the response; return the exit code it stands for."""
    from dicom_hub.adapters.dispatch import response_json

    _write_line(response_json(response, indent))
    return exit_code_for(response.error.code if response.error else None)


def _parsed(request: Any) -> Any:
    """Request text as parsed JSON, for the fast lane; text that is not JSON stays text, for the
    dispatcher to refuse in its own words."""
    if not isinstance(request, str):
        return request
    try:
        return json.loads(request)
    except (ValueError, RecursionError):
        return request


def _write_line(text: str) -> None:
    """One response line as UTF-8 bytes (response_json has escaped what UTF-8 cannot carry), so
    the locale's encoding or a lone surrogate can never break stdout."""
    sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
    sys.stdout.flush()


def _write_lines(lines: list[bytes]) -> None:
    """Response lines that are UTF-8 already (from stream workers), one write and one flush."""
    sys.stdout.buffer.write(b"\n".join(lines) + b"\n")
    sys.stdout.flush()


def _request_from_args(args: argparse.Namespace) -> Any:
    source = args.request_file or args.request
    if args.op:
        if source:
            raise HubError(ErrorCode.INVALID_REQUEST, "both a request file and --op were given", "use one or the other")
        request: dict[str, Any] = {"op": args.op}
        if args.input:
            request["input"] = args.input[0] if len(args.input) == 1 else args.input
        if args.output:
            request["output"] = args.output
        if args.options is not None:
            try:
                request["options"] = json.loads(args.options)
            except ValueError as err:
                raise HubError(ErrorCode.INVALID_REQUEST, f"--options is not valid JSON: {err}", "quote it for the shell: --options '{\"frame\": 0}'") from None
        if args.backend:
            request["backend"] = args.backend
        if args.id is not None:
            request["id"] = args.id
        return request
    if source in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise HubError(ErrorCode.INVALID_REQUEST, "no request given", "pipe a JSON request on stdin, give a request file, or use --op (see dicom-hub run --help)")
        text = request_text(sys.stdin.buffer.read(), "the request on stdin")
    else:
        try:
            with open(source, "rb") as fh:
                text = request_text(fh.read(), f"request file {source}")
        except OSError as err:
            raise HubError(ErrorCode.INVALID_REQUEST, f"cannot read request file {source}: {err.strerror}", "check the path") from None
    return _with_flag_overrides(text, args)


def _with_flag_overrides(text: str, args: argparse.Namespace) -> Any:
    """--backend/--id on the command line override the request's own fields."""
    if not (args.backend or args.id is not None):
        return text
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if isinstance(request, dict):
        if args.backend:
            request["backend"] = args.backend
        if args.id is not None:
            request["id"] = args.id
    return request


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def default_jobs() -> int:
    """One worker per core this process may run on."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _stream(jobs: int, ordered: bool) -> int:
    """One response line per request line; a bad line gives an error response and the stream goes on.

    stdin is read as bytes and decoded line by line, so one line that is not UTF-8 is answered
    with `invalid_request` instead of losing the lines around it. The first SERIAL_LINES lines are
    answered here, one by one (a short stream never pays for workers); after that, with more than
    one job, worker processes answer the rest (`stream_pool`), each answer identical to this path's.
    """
    from dicom_hub.interface.commands.stream_pool import LineReader, StreamPool

    reader = LineReader(sys.stdin.buffer.fileno())
    worst = number = 0
    for number, line in enumerate(reader.blocking_lines(), start=1):
        if line.strip():
            text, code = _answer(number, line)
            _write_line(text)
            worst = max(worst, code)
        if jobs > 1 and number >= SERIAL_LINES:
            worst = max(worst, StreamPool(_answer, _write_lines, jobs, ordered, fast=_fast_answer).run(reader, number))
            break
    return 0 if worst == 0 else 1


SERIAL_LINES = 8


def _answer(number: int, line: bytes) -> tuple[str, int]:
    """The response line for request line `number`, and the exit code it stands for: from the
    fast lane (a plain `info` request, without importing pydicom), else from the dispatcher."""
    fast = _fast_answer(number, line)
    if fast is not None:
        return fast
    from dicom_hub.adapters.dispatch import dispatch, error_response

    try:
        request = _parsed(request_text(line, f"request line {number}"))
    except HubError as err:
        return _response_line(error_response(err))
    return _response_line(dispatch(request))


def _fast_answer(number: int, line: bytes) -> tuple[str, int] | None:
    """The fast lane's response line for a plain `info` request line (exit code 0), else None."""
    from dicom_hub.interface.commands import fast_lane

    try:
        request = _parsed(request_text(line, f"request line {number}"))
    except HubError:
        return None
    fast = fast_lane.answer(request)
    return None if fast is None else (fast, 0)


def _response_line(response: Response) -> tuple[str, int]:
    from dicom_hub.adapters.dispatch import response_json

    return response_json(response), exit_code_for(response.error.code if response.error else None)
