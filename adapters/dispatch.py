"""One request in, one response out.

validate the request -> look the op up in the catalog -> check options, inputs and output ->
choose the backend -> run it -> verify the DICOM it wrote -> wrap the outcome (or the error) into a schema-valid Response.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dicom_hub.adapters.base import Adapter
from dicom_hub.adapters.registry import candidates, get_adapter
from dicom_hub.adapters.staged_output import StagedOutput
from dicom_hub.contract import CONTRACT_VERSION
from dicom_hub.contract.catalog import DISPATCHER_OPTIONS, OpSpec, get_op
from dicom_hub.contract.errors import ErrorCode, HubError, exit_code_for
from dicom_hub.contract.files import check_dicom_start, resolve_inputs, resolve_output
from dicom_hub.contract.job import Job, Outcome
from dicom_hub.contract.messages import ErrorInfo, Request, Response

NON_DICOM_INPUT_OPS = frozenset({"from_json"})  # file ops whose input is not a DICOM file
# errno values that can only mean "the output cannot be written" (read-only, full, too large).
_FILE_SYSTEM_REFUSALS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
DEBUG = False  # set by `dicom-hub --debug`: tracebacks of internal errors go to stderr


def dispatch(raw: Request | dict[str, Any] | str | bytes) -> Response:
    """Run one request and always return a Response (errors included)."""
    start = time.perf_counter()
    echo: dict[str, Any] = {}
    backend_name: str | None = None
    try:
        raw = _parsed(raw)  # JSON text is parsed once, here: the stream hot path
        echo = _echo_fields(raw)
        request = parse_request(raw)
        spec = get_op(request.op)
        job = build_job(request, spec)
        failed: list[tuple[str, HubError]] = []  # backends that answered codec/backend_unavailable, in order
        may_fall_back = _may_fall_back(request.backend, spec)
        with StagedOutput(job, spec.writes_dicom and spec.output == "file") as staged:
            job = staged.job  # a DICOM file is written beside the output, verified, then moved into place
            before = _output_state(job.output) if may_fall_back else None
            while True:
                adapter = _next_adapter(request.backend, spec, job, failed)
                backend_name = adapter.name
                try:
                    outcome = adapter.handle(job)
                    break
                except HubError as err:
                    if not (may_fall_back and err.code in FALLBACK_CODES):
                        raise _after_attempts(err, failed) from None
                    _check_untouched(job.output, before, adapter.name, err)
                    failed.append((adapter.name, err))
            if failed:
                outcome.metadata["attempts"] = [_attempt(name, err) for name, err in failed]
            if spec.writes_dicom:  # the checks are imported for ops that write DICOM only
                from dicom_hub.adapters.verify import DEFAULT_LEVEL, verify_outcome

                verify_outcome(job, outcome, adapter.name, request.options.get("verify", DEFAULT_LEVEL))
            outcome = staged.publish(outcome)
        return _checked(_success(request, adapter, outcome, start))
    except HubError as err:
        return _checked(_failure(echo, backend_name, err, start))
    except OSError as exc:
        if exc.errno not in _FILE_SYSTEM_REFUSALS:
            return _checked(_failure(echo, backend_name, _internal(exc), start))
        # A write the file system refused, escaped from a backend: say so, not "a bug".
        refused = HubError(ErrorCode.OUTPUT_ERROR, f"cannot write {exc.filename or 'the output'}: {exc.strerror}", "choose an output folder that is writable and has free space")
        return _checked(_failure(echo, backend_name, refused, start))
    except Exception as exc:  # a bug: still a typed, schema-valid answer; the traceback goes to stderr
        return _checked(_failure(echo, backend_name, _internal(exc), start))


def _internal(exc: Exception) -> HubError:
    if DEBUG:
        import traceback

        traceback.print_exc()
    return HubError(
        ErrorCode.INTERNAL_ERROR,
        f"internal error: {type(exc).__name__}: {exc}",
        "this is a dicom-hub bug; rerun with --debug and report the traceback",
    )


def _parsed(raw: Any) -> Any:
    if not isinstance(raw, str | bytes):
        return raw
    try:
        return json.loads(raw)
    except ValueError as err:
        raise HubError(ErrorCode.INVALID_REQUEST, f"request is not valid JSON: {err}", "send one JSON object per request") from None
    except RecursionError:
        raise HubError(ErrorCode.INVALID_REQUEST, "request is nested too deeply to parse", "requests are flat objects; options nest a few levels at most") from None


def parse_request(raw: Request | dict[str, Any] | str | bytes) -> Request:
    """A validated Request, or `invalid_request` naming the offending field."""
    raw = _parsed(raw)
    try:
        request = raw if isinstance(raw, Request) else Request.from_data(raw)
    except RecursionError:
        raise HubError(ErrorCode.INVALID_REQUEST, "request is nested too deeply to check", "requests are flat objects; options nest a few levels at most") from None
    if request.contract and request.contract.split(".")[0] != CONTRACT_VERSION.split(".")[0]:
        raise HubError(
            ErrorCode.INVALID_REQUEST,
            f"contract version {request.contract} is not supported (this is {CONTRACT_VERSION})",
            f"send contract {CONTRACT_VERSION.split('.')[0]}.x requests, or omit 'contract'",
        )
    return request


def build_job(request: Request, spec: OpSpec) -> Job:
    try:
        spec.validate_options(request.options)
    except RecursionError:
        raise HubError(ErrorCode.INVALID_REQUEST, f"options of {spec.name!r} are nested too deeply to check", f"see `dicom-hub ops {spec.name}` for the option schema") from None
    overwrite = bool(request.options.get("overwrite", False))
    options = {name: value for name, value in request.options.items() if name != "verify"}  # the dispatcher's own
    inputs = resolve_inputs(request.input, spec.input, spec.name)
    if spec.input == "file" and spec.name not in NON_DICOM_INPUT_OPS:
        check_dicom_start(inputs[0])
    output = resolve_output(request.output, spec.output, spec.output_required, spec.name, inputs, overwrite)
    job = Job(
        op=spec.name,
        inputs=inputs,
        output=output,
        options=options,
        defaults=spec.defaults,
        backend=request.backend,
        id=request.id,
    )
    if spec.family == "deid":
        from dicom_hub.contract.dicom.deid.side_files import check_side_files

        check_side_files(job)  # against the output the user named (the backend writes a staging file)
    return job


def choose_adapter(backend: str, spec: OpSpec, job: Job, skip: Sequence[str] = ()) -> Adapter:
    """The first candidate that is available, serves the op and honours every given option
    (`skip`: backends this request already ran).

    When none fits, the error lists every candidate and why it was passed over.
    """
    names, automatic = candidates(backend)
    if skip:
        names = (name for name in names if name not in skip)
    given = sorted(set(job.options) - DISPATCHER_OPTIONS)
    reasons: list[tuple[ErrorCode, str]] = []
    for name in names:
        try:
            adapter = get_adapter(name)
        except HubError as err:
            if not automatic:
                raise
            reasons.append((ErrorCode.BACKEND_UNAVAILABLE, f"{name}: {err.message}"))
            continue
        support = adapter.support(spec.name)
        if support is None:
            reasons.append((ErrorCode.UNSUPPORTED_OP, f"{name}: {adapter.unsupported_reason(spec.name)}"))
            continue
        refused = [opt for opt in given if not support.honours(opt)]
        if refused:
            reasons.append((ErrorCode.UNSUPPORTED_OPTION, f"{name}: does not honour option(s) {', '.join(refused)} of {spec.name!r}"))
            continue
        availability = adapter.availability
        if not availability.ok:
            reasons.append((ErrorCode.BACKEND_UNAVAILABLE, f"{name}: {availability.reason} (install: {availability.hint})"))
            continue
        return adapter
    if not reasons:
        raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"no backend matches {backend!r}", "`dicom-hub backends` lists them")
    # The most specific reason decides the code: a named backend's own reason, else the first one.
    code = reasons[0][0] if not automatic or len(reasons) == 1 else _overall_code(reasons)
    message = "; ".join(r for _, r in reasons) if automatic else reasons[0][1]
    prefix = f"no backend can run {spec.name!r} with these options: " if automatic else ""
    raise HubError(code, prefix + message, f"`dicom-hub ops {spec.name}` shows which backend supports what")


# `auto` moves on to the next candidate when a backend answers one of these at run time (e.g. python
# without python-gdcm cannot encode jpeg_lossless; dcmtk can), as pydicom's decoder runner tries
# its plugins in turn. Any other answer is the answer. A named backend never falls back.
FALLBACK_CODES = frozenset({ErrorCode.CODEC_UNAVAILABLE, ErrorCode.BACKEND_UNAVAILABLE})
# Ops that talk to a peer never fall back: the peer may already hold part of the first attempt's work.
# Batch ops have one backend, and their output trees are too large to snapshot per request.
_NO_FALLBACK_FAMILIES = frozenset({"network", "dicomweb", "batch"})


def _may_fall_back(backend: str, spec: OpSpec) -> bool:
    return candidates(backend)[1] and spec.family not in _NO_FALLBACK_FAMILIES


def _next_adapter(backend: str, spec: OpSpec, job: Job, failed: list[tuple[str, HubError]]) -> Adapter:
    """The next candidate after the failed attempts. When none is left: a lone failure as it was
    (message, hint and tool output), else one error listing every attempt."""
    try:
        return choose_adapter(backend, spec, job, skip=[name for name, _ in failed])
    except HubError:
        if not failed:
            raise
        if len(failed) == 1:
            raise failed[0][1] from None
        raise _all_failed(spec.name, failed) from None


def _output_state(output: Path | None) -> tuple | None:
    """What is at the output path (files, sizes and times), to compare after a failed attempt; an
    empty folder counts as nothing (an op may make its output folder before it fails)."""
    if output is None or not output.exists():
        return None
    paths = sorted(output.rglob("*")) if output.is_dir() else [output]
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths if p.is_file()) or None


def _check_untouched(output: Path | None, before: tuple | None, backend: str, err: HubError) -> None:
    """A failed attempt leaves the output as it was (the file rules write through a temporary file and
    a rename); if one did not, that is our bug, and no other backend may run after it."""
    if _output_state(output) != before:
        raise HubError(
            ErrorCode.INTERNAL_ERROR,
            f"{backend} answered {err.code.value} ({err.message}) but changed {output}; a failed attempt must leave no output",
            "this is a dicom-hub bug; please report it (run with a named backend meanwhile)",
        )


def _attempt(backend: str, err: HubError) -> dict[str, str]:
    """One failed attempt as `metadata.attempts` lists it."""
    attempt = {"backend": backend, "code": err.code.value, "message": err.message}
    return attempt | ({"hint": err.hint} if err.hint else {})


def _describe_attempts(failed: list[tuple[str, HubError]]) -> str:
    return "; ".join(f"{name}: {err.code.value}: {err.message}" for name, err in failed)


def _after_attempts(err: HubError, failed: list[tuple[str, HubError]]) -> HubError:
    """The error of the backend that answered last, saying which backends were tried before it."""
    if failed:
        err.message = f"{err.message} (tried before: {_describe_attempts(failed)})"
    return err


def _all_failed(op: str, failed: list[tuple[str, HubError]]) -> HubError:
    """Every candidate that fits ran and none could: one error listing each attempt and its fix."""
    codes = {err.code for _, err in failed}
    code = ErrorCode.CODEC_UNAVAILABLE if ErrorCode.CODEC_UNAVAILABLE in codes else ErrorCode.BACKEND_UNAVAILABLE
    hints = "; ".join(dict.fromkeys(f"{name}: {err.hint}" for name, err in failed if err.hint))
    stderr = "".join(err.stderr for _, err in failed)
    return HubError(code, f"every backend that could run {op!r} failed: {_describe_attempts(failed)}", hints or f"`dicom-hub ops {op}` shows which backend supports what", stderr=stderr)


def _overall_code(reasons: list[tuple[ErrorCode, str]]) -> ErrorCode:
    """The most actionable code among the candidates' reasons (an option to drop, then an install)."""
    codes = {code for code, _ in reasons}
    return next(c for c in (ErrorCode.UNSUPPORTED_OPTION, ErrorCode.BACKEND_UNAVAILABLE, ErrorCode.UNSUPPORTED_OP) if c in codes)


def _echo_fields(raw: Any) -> dict[str, Any]:
    """id and op of a request, even an invalid one, to echo in the error response."""
    if isinstance(raw, Request):
        return {"id": raw.id, "op": raw.op}
    if not isinstance(raw, dict):
        return {}
    echo = {}
    if isinstance(raw.get("id"), str | int) and not isinstance(raw.get("id"), bool):
        echo["id"] = raw["id"]
    if isinstance(raw.get("op"), str):
        echo["op"] = raw["op"]
    return echo


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


def _success(request: Request, adapter: Adapter, outcome: Outcome, start: float) -> Response:
    existing: list[str] = []
    missing: list[str] = []
    for path in outcome.output_files:  # a batch lists thousands: one stat each, no Path
        (existing if os.path.exists(path) else missing).append(str(path))
    if missing:
        err = HubError(ErrorCode.BACKEND_ERROR, f"{adapter.name} reported outputs that do not exist: {', '.join(missing[:3])}", "see stderr")
        return _failure({"id": request.id, "op": request.op}, adapter.name, err, start)
    unsendable = _not_json(outcome.metadata) if existing else None
    if unsendable:
        # The answer cannot say ok, so the outputs must not stay behind as if it had.
        for path in existing:
            Path(path).unlink(missing_ok=True)
        err = HubError(ErrorCode.INTERNAL_ERROR, f"response is not serializable: {unsendable}; its outputs were removed", "this is a dicom-hub bug; please report it")
        return _failure({"id": request.id, "op": request.op}, adapter.name, err, start)
    return Response(
        contract=CONTRACT_VERSION,
        id=request.id,
        op=request.op,
        backend=adapter.name,
        ok=True,
        returncode=outcome.returncode,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        output_files=existing,
        metadata=outcome.metadata,
        duration_ms=_elapsed_ms(start),
        error=None,
    )


def _not_json(metadata: dict[str, Any]) -> str | None:
    """Why `metadata` cannot be standard JSON (NaN, Infinity, an object), or None."""
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def error_response(err: HubError, echo: dict[str, Any] | None = None) -> Response:
    """A failure response for an error raised before dispatch (e.g. while reading CLI flags)."""
    return _failure({k: v for k, v in (echo or {}).items() if v is not None}, None, err, time.perf_counter())


def _failure(echo: dict[str, Any], backend: str | None, err: HubError, start: float) -> Response:
    # The backend process's exit code when one ran; else the code `dicom-hub run` exits with.
    returncode = err.returncode if err.returncode is not None else exit_code_for(err.code)
    return Response(
        contract=CONTRACT_VERSION,
        id=echo.get("id"),
        op=echo.get("op"),
        backend=backend,
        ok=False,
        returncode=returncode,
        stdout=err.stdout,
        stderr=err.stderr,
        output_files=[],
        metadata={},
        duration_ms=_elapsed_ms(start),
        error=ErrorInfo(code=err.code, message=err.message, hint=err.hint),
    )


def response_json(response: Response, indent: int | None = None) -> str:
    """Serialize a response as standard JSON that UTF-8 can carry; a value that is not JSON
    (NaN, Infinity, an object, a structure too deep) becomes an `internal_error` response."""
    try:
        return response.to_json(indent)
    except (TypeError, ValueError, RecursionError) as exc:
        err = HubError(ErrorCode.INTERNAL_ERROR, f"response is not serializable: {type(exc).__name__}: {exc}", "this is a dicom-hub bug; please report it")
        return _failure({"id": response.id, "op": response.op}, response.backend, err, time.perf_counter()).to_json(indent)


def _checked(response: Response) -> Response:
    """The response itself if it fits the published schema; else an `internal_error` that does."""
    problem = response.problem()
    if problem is None:
        return response
    err = HubError(ErrorCode.INTERNAL_ERROR, f"the {response.backend or 'dispatcher'} response breaks the contract: {problem}", "this is a bug; please report it")
    echo = {"id": response.id, "op": response.op} if isinstance(response.id, str | int | None) else {"op": response.op}
    return _failure(echo, response.backend, err, time.perf_counter())
