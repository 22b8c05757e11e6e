"""Contract-native programs as backends: any program that reads a request on stdin and answers
with a response on stdout is a backend, without an adapter of its own.

The protocol is in `contract/README.md`. This module runs such a program, checks every answer
against the published response schema (a crash, a hang, non-JSON or schema-invalid output
becomes a typed error that keeps the program's stderr), and reads the programs users register
in `DICOM_HUB_BACKENDS` or in a small TOML file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import Any

from dicom_hub.adapters.base import Adapter, Availability, OpEntry, OpSupport, Unsupported, default_reason
from dicom_hub.adapters.contract_stream import StreamSession
from dicom_hub.adapters.subprocess_adapter import SubprocessAdapter, ToolRun
from dicom_hub.contract import CONTRACT_VERSION
from dicom_hub.contract.catalog import load_catalog
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

ENV_BACKENDS = "DICOM_HUB_BACKENDS"
ENV_CONFIG = "DICOM_HUB_CONFIG"
CAPABILITIES_FLAG = "--capabilities"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HINT = "see contract/README.md (contract-native backends) for the protocol"


class ContractCliAdapter(SubprocessAdapter):
    """A program that speaks the contract itself: request JSON on stdin, response JSON on stdout.

    Configured instances get their name and argument list from the user; subclasses (e.g. the
    C# backend) fix them in code by overriding `command()`. What a configured program can do comes
    from `PROGRAM --capabilities`, asked once per process; a subclass may declare it in code instead
    (`knows_ops_without_running`), so that it is known while the program is missing.
    """

    name = "contract-cli"
    language = "unknown"
    toolkit = "contract-native program"
    install_hint = _HINT
    executable = ""

    def __init__(self, name: str | None = None, argv: list[str] | None = None, origin: str = "") -> None:
        if name is not None:
            self.name = name
        self._argv = list(argv) if argv is not None else None
        self.origin = origin  # where the user registered it, for messages
        self._reported: dict[str, Any] = {}
        self._stream: StreamSession | None = None

    # -- the program ------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The argument list that starts the program (a request goes to its stdin)."""
        if not self._argv:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"{self.name}: no command configured ({self.origin or 'none'})", _HINT)
        exe = shutil.which(self._argv[0])
        if exe is None:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"{self.name}: {self._argv[0]} not found ({self.origin})", self.install_hint)
        return [exe, *self._argv[1:]]

    def _build_cmd(self, job: Job) -> list[str]:
        return self.command()

    # -- capabilities -----------------------------------------------------------------------------
    def probe(self) -> Availability:
        try:
            argv = [*self.command(), CAPABILITIES_FLAG]
            run = self.run_cmd(argv, timeout=60)
            self._reported = parse_capabilities(run, self.name)
        except HubError as err:
            return Availability(False, reason=err.message, hint=err.hint or self.install_hint)
        # What the program says about itself wins over the class defaults (`dicom-hub backends`).
        self.language = str(self._reported.get("language") or self.language)
        self.toolkit = str(self._reported.get("toolkit") or self.toolkit)
        return Availability(True, version=str(self._reported.get("version") or "unknown"))

    def reported(self) -> dict[str, Any]:
        """The program's `--capabilities` document ({} when it cannot run)."""
        return self._reported if self.availability.ok else {}

    def knows_ops_without_running(self) -> bool:
        """Whether the op table is known without the program (a built-in program's adapter declares
        it); a configured program's ops are what it reports."""
        return False

    def declare_ops(self) -> dict[str, OpEntry]:
        """The ops the program reports, its stubs, and a stub for every other op of the catalog."""
        catalog = load_catalog()
        if not self.availability.ok:
            return {op: Unsupported(f"{self.name} cannot run, so what it serves is unknown: {self.availability.reason}") for op in catalog}
        report = self.reported()
        table: dict[str, OpEntry] = {op: Unsupported(default_reason(self.name, op)) for op in catalog}
        table.update({op: Unsupported(str(reason)) for op, reason in report.get("unsupported", {}).items() if op in catalog})
        table.update({op: self._op_support(entry) for op, entry in report.get("ops", {}).items() if op in catalog})
        return table

    def _op_support(self, entry: dict[str, Any]) -> OpSupport:
        options = entry.get("options")
        return OpSupport(None if options is None else frozenset(options), self.ask_program, str(entry.get("note") or ""))

    def support(self, op: str) -> OpSupport | None:
        # A configured program that cannot run has no known capabilities: say "unavailable" (with
        # the reason and hint), not "unsupported".
        if not self.knows_ops_without_running() and not self.availability.ok:
            return OpSupport(None, self.ask_program) if op in load_catalog() else None
        return super().support(op)

    # -- one request ------------------------------------------------------------------------------
    def handle(self, job: Job) -> Outcome:
        self.check_input(job)
        return self.handler(job.op)(job)

    def ask_program(self, job: Job) -> Outcome:
        """Send the request to the program (its long-lived `--stream` process when it has one)."""
        request = json.dumps(request_for(job, defaults=self.reported().get("defaults") is True))
        if self.reported().get("stream") is not True:
            run = self.run_cmd(self._build_cmd(job), timeout=self.timeout_for(job), stdin=request + "\n")
            return self.interpret(job, run)
        session = self._session()
        run = session.ask(request, self.timeout_for(job))
        try:
            return self.interpret(job, run)
        except HubError as err:
            if err.code is ErrorCode.BACKEND_ERROR:
                session.close(kill=True)  # what else it printed would be read as the next answers
            raise

    def _session(self) -> StreamSession:
        """The long-lived `PROGRAM --stream` process (programs that report "stream": true)."""
        if self._stream is None:
            self._stream = StreamSession(self.command())
        return self._stream

    def interpret(self, job: Job, run: ToolRun) -> Outcome:
        response = self.read_response(run)
        if response["error"] is not None:
            err = response["error"]
            raise HubError(
                ErrorCode(err["code"]),
                err["message"],
                err.get("hint"),
                stdout=response["stdout"],
                stderr=_joined(response["stderr"], run.stderr),
                returncode=run.returncode or response["returncode"] or 1,
            )
        if run.returncode != 0:
            raise self.fail(run, f"{self.name} answered ok but exited with code {run.returncode}")
        outside = [p for p in response["output_files"] if not _inside(Path(p), job.output)]
        if outside:
            raise self.fail(run, f"{self.name} reported outputs outside the requested output: {', '.join(outside[:3])}")
        return Outcome(
            metadata=response["metadata"],
            output_files=list(response["output_files"]),
            stdout=response["stdout"],
            stderr=_joined(response["stderr"], run.stderr),
            returncode=run.returncode,
        )

    def read_response(self, run: ToolRun) -> dict[str, Any]:
        """The program's stdout as a checked response; anything else is `backend_error`."""
        text = run.stdout.strip()
        if not text:
            what = f"exited with code {run.returncode}" if run.returncode else "printed nothing"
            raise self.fail(run, f"{self.name} {what} and gave no response")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise self.fail(run, f"{self.name} printed something that is not one JSON response ({err.msg} at line {err.lineno})") from None
        except ValueError as err:  # valid JSON that Python cannot hold, e.g. an integer of over 4300 digits
            raise self.fail(run, f"{self.name} printed a JSON response that cannot be read ({err})") from None
        problem = response_problem(data)
        if problem:
            raise self.fail(run, f"{self.name} printed a response that violates the contract: {problem}")
        return data


def request_for(job: Job, defaults: bool = False) -> dict[str, Any]:
    """The request a contract-native program receives: absolute paths, options as given, and
    with `defaults` (the program's capabilities ask for them) the catalog default of every
    other option, so the program needs no defaults of its own."""
    spec = load_catalog()[job.op]
    paths = [str(p) for p in job.inputs]
    single = spec.input in ("file", "directory")
    request = {
        "contract": CONTRACT_VERSION,
        "id": job.id,
        "op": job.op,
        "input": (paths[0] if single else paths) if paths else None,
        "output": str(job.output) if job.output is not None else None,
        "options": dict(job.options),
    }
    if defaults:
        # `verify` is the dispatcher's own and never reaches the program (as when given).
        request["defaults"] = {k: v for k, v in job.defaults.items() if k not in job.options and k != "verify"}
    return request


def response_problem(data: Any) -> str | None:
    """Why `data` is not a valid response under the published schema, or None."""
    from dicom_hub.contract.messages import schema_problem

    if not isinstance(data, dict):
        return "the response is not a JSON object"
    return schema_problem("response", data)


def parse_capabilities(run: ToolRun, name: str) -> dict[str, Any]:
    """Check a `--capabilities` answer: {"ops": {op: {"options": [...] | null, "note": ""}}, ...}."""

    def bad(why: str) -> HubError:
        detail = run.tail()
        return HubError(
            ErrorCode.BACKEND_ERROR,
            f"{name}: {CAPABILITIES_FLAG} {why}" + (f": {detail}" if detail else ""),
            _HINT,
            stdout=run.stdout,
            stderr=run.stderr,
            returncode=run.returncode,
        )

    if run.returncode != 0:
        raise bad(f"exited with code {run.returncode}")
    try:
        doc = json.loads(run.stdout)
    except ValueError:
        raise bad("did not print JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("ops"), dict):
        raise bad('did not print an object with "ops"')
    major = str(doc.get("contract", CONTRACT_VERSION)).split(".")[0]
    if major != CONTRACT_VERSION.split(".")[0]:
        raise bad(f"reports contract {doc.get('contract')}, this dicom-hub speaks {CONTRACT_VERSION}")
    for op, entry in doc["ops"].items():
        options = entry.get("options") if isinstance(entry, dict) else "?"
        if options is not None and not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
            raise bad(f'op {op!r}: "options" must be a list of option names or null')
    if not isinstance(doc.get("unsupported", {}), dict):
        raise bad('"unsupported" must map op -> reason')
    return doc


def capabilities_document(adapter: Adapter) -> dict[str, Any]:
    """What `PROGRAM --capabilities` prints, built from an adapter (the reverse of the above)."""
    ops = {
        op: {"options": None if s.options is None else sorted(s.options), "note": s.note}
        for op, s in sorted(adapter.capabilities().items())
    }
    return {
        "contract": CONTRACT_VERSION,
        "name": adapter.name,
        "version": adapter.version(),
        "language": adapter.language,
        "toolkit": adapter.toolkit,
        "ops": ops,
        "unsupported": dict(sorted(adapter.unsupported.items())),
    }


def _inside(path: Path, output: Path | None) -> bool:
    """The output itself, a file inside an output folder, or a sidecar beside an output file."""
    if output is None:
        return False
    path = path.absolute()
    return path == output or output in path.parents or (not output.is_dir() and path.parent == output.parent)


def _joined(*texts: str) -> str:
    """The response's own stderr and the process's stderr, without empty parts."""
    parts = [t.rstrip("\n") for t in texts if t.strip()]
    return "\n".join(parts) + "\n" if parts else ""


# -- where users register programs ------------------------------------------------------------------
def config_path() -> Path:
    """`$DICOM_HUB_CONFIG`, else `$XDG_CONFIG_HOME/dicom-hub/backends.toml` (~/.config by default)."""
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dicom-hub" / "backends.toml"


def parse_env_backends(text: str) -> list[tuple[str, list[str] | None, str]]:
    """`name=command args;name2=command2` -> [(name, argv or None when invalid, origin)].

    Entries are separated by `;`, the name ends at the first `=`, the command is split like a
    POSIX shell would (`shlex.split`: quotes group words) but never run through a shell.
    """
    entries = []
    for index, chunk in enumerate(text.split(";")):
        if not chunk.strip():
            continue
        name, sep, command = chunk.partition("=")
        name = name.strip()
        origin = f"{ENV_BACKENDS} entry {index + 1}"
        if not sep or not _NAME.match(name):
            _warn(f"{origin} ({chunk.strip()!r}) is not name=command with a name like my-tool; ignored")
            continue
        try:
            argv = shlex.split(command)
        except ValueError as err:
            _warn(f"{origin}: cannot split the command of {name!r} ({err}); ignored")
            argv = None
        entries.append((name, argv or None, origin))
    return entries


def parse_config_file(path: Path) -> list[tuple[str, list[str] | None, str]]:
    """Top-level `name = "command args"` or `name = ["command", "args"]` pairs of a TOML file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 (tomli is a dependency there)
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        _warn(f"cannot read {path}: {err}; its backends are ignored")
        return []
    entries = []
    for name, value in data.items():
        origin = f"{path}"
        if not _NAME.match(name):
            _warn(f"{path}: backend name {name!r} must look like my-tool; ignored")
            continue
        argv: list[str] | None = None
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as err:
                _warn(f"{path}: cannot split the command of {name!r} ({err})")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            argv = list(value)
        else:
            _warn(f"{path}: {name!r} must be a command string or a list of strings")
        entries.append((name, argv or None, origin))
    return entries


def configured_backends() -> dict[str, Adapter]:
    """Contract-native programs from the config file, then `DICOM_HUB_BACKENDS` (which wins)."""
    path = config_path()
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _configured(os.environ.get(ENV_BACKENDS, ""), str(path), stamp)


@cache
def _configured(env_text: str, path: str, stamp: int | None) -> dict[str, Adapter]:
    # Cached on the inputs, so each program is asked for its capabilities once per process.
    entries = parse_config_file(Path(path)) if stamp is not None else []
    entries += parse_env_backends(env_text)
    return {name: ContractCliAdapter(name, argv, origin) for name, argv, origin in entries}


def _warn(message: str) -> None:
    print(f"dicom-hub: {message}", file=sys.stderr)
