"""PixelMed without a JVM per request: the adapter's `java … com.pixelmed.X args` commands run in one
long-lived JVM, the PixelMed host (`PixelmedHost.java`, built by `scripts/install/50-pixelmed.sh`).

The adapter still builds its one-shot command lines; `PixelMedHostRuns.run_cmd` turns such a line
into a host request `{"class", "args", "stdin"}` and the answer back into the `ToolRun` the one-shot
run would have given (return code, stdout, stderr). The process handling (timeout kills the JVM,
a dead JVM is replaced at the next request, a forked worker starts its own) is `StreamSession`'s.
Without a built host the command runs as before, one JVM per request; with
DICOM_HUB_REQUIRE_BACKENDS=1 (CI) a missing host is `backend_unavailable` instead.
DICOM_HUB_PIXELMED_HOST=0 turns the host off (one JVM per request); DICOM_HUB_PIXELMED_HOST_JVM_FLAGS
adds flags to the host's JVM (split like a shell command; no shell runs), e.g. `-Xmx4g`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.adapters.base import Availability
from dicom_hub.adapters.subprocess_adapter import DEFAULT_TIMEOUT_S, ToolRun
from dicom_hub.contract.errors import ErrorCode, HubError

if TYPE_CHECKING:
    from dicom_hub.adapters.contract_stream import StreamSession

HOST_CLASS = "PixelmedHost"
SOURCE = Path(__file__).with_name(f"{HOST_CLASS}.java")
PACKAGE = "com.pixelmed."
# JDK 17 allows a SecurityManager (how the host traps System.exit) only when asked at start-up.
SECURITY_MANAGER = "-Djava.security.manager=allow"
BUILD_HINT = "bash scripts/install/50-pixelmed.sh (BUILD.md, 'PixelMed'), or DICOM_HUB_PIXELMED_HOST=0 for one JVM per request"
# What the JVM prints about that SecurityManager at start-up: noise, not the request's stderr.
_JVM_BANNER = re.compile(r"^WARNING: .*(Security ?Manager|terminally deprecated|maintainers of PixelmedHost).*\n?", re.MULTILINE | re.IGNORECASE)
_SESSIONS: dict[tuple[str, ...], StreamSession] = {}


def build_dir() -> Path:
    """Where 50-pixelmed.sh puts the compiled host (same rule as the script)."""
    if os.environ.get("DICOM_HUB_PIXELMED_BUILD"):
        return Path(os.environ["DICOM_HUB_PIXELMED_BUILD"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dicom-hub" / "pixelmed"


def host_missing() -> str | None:
    """Why the host cannot be used (not built, or older than its source); None when it can."""
    built = build_dir() / f"{HOST_CLASS}.class"
    if not built.is_file():
        return f"the PixelMed host is not built ({built} missing)"
    if SOURCE.is_file() and SOURCE.stat().st_mtime > built.stat().st_mtime:
        return f"the PixelMed host is out of date ({SOURCE.name} is newer than {built})"
    return None


def host_flags() -> frozenset[str]:
    """The JVM flags the host starts with: every flag a PixelMed command line of the adapter uses."""
    from dicom_hub.adapters.pixelmed.adapter import HEADLESS, XPATH_LIMITS

    return frozenset({HEADLESS, *XPATH_LIMITS})


def host_request(args: list[str], classpath: str) -> dict[str, object] | None:
    """`java [flags] -cp CLASSPATH com.pixelmed.X args…` as a host request; None for any other
    command (the probe's `java -version`, another classpath, a flag the host was not started with)."""
    if "-cp" not in args:
        return None
    at = args.index("-cp")
    flags, rest = set(args[1:at]), args[at + 1 :]
    if len(rest) < 2 or rest[0] != classpath or not rest[1].startswith(PACKAGE) or not flags <= host_flags():
        return None
    return {"class": rest[1], "args": rest[2:]}


def session_for(java: str, classpath: str) -> StreamSession:
    """The host JVM for this `java` and classpath (one per process; a forked worker starts its own)."""
    extra = shlex.split(os.environ.get("DICOM_HUB_PIXELMED_HOST_JVM_FLAGS", ""))  # e.g. -Xmx4g for large files
    argv = (java, *sorted(host_flags()), SECURITY_MANAGER, *extra, "-cp", os.pathsep.join([str(build_dir()), classpath]), HOST_CLASS)
    if argv not in _SESSIONS:
        from dicom_hub.adapters.contract_stream import StreamSession

        _SESSIONS[argv] = StreamSession(list(argv))
    return _SESSIONS[argv]


def ask(session: StreamSession, args: list[str], request: dict[str, object], timeout: float) -> ToolRun:
    """One request: the `ToolRun` a one-shot `java` would have given (timeout: a typed HubError)."""
    reply = session.ask(json.dumps(request), timeout)
    jvm_stderr = _JVM_BANNER.sub("", reply.stderr)
    try:
        answer = json.loads(reply.stdout) if reply.stdout.strip() else None
    except json.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):  # the JVM died (or printed garbage): a crash, whatever the input
        session.close(kill=True)
        return_code = reply.returncode or 1
        raise HubError(
            ErrorCode.BACKEND_ERROR,
            f"the PixelMed JVM running {request.get('class')} ended without an answer (exit code {return_code})",
            "the next request starts a new JVM; if this input crashes it again, try another backend",
            stdout=reply.stdout,
            stderr=jvm_stderr,
            returncode=return_code,
        )
    if answer.get("error"):
        raise HubError(ErrorCode.INTERNAL_ERROR, f"the PixelMed host refused a request: {answer['error']}", "report this: the adapter sent a request the host does not run")
    if answer.get("restart"):
        session.close(kill=True)  # the main left threads running: they must not print into later answers
    return ToolRun(args, int(answer["returncode"]), str(answer["stdout"]), jvm_stderr + str(answer["stderr"]), reply.seconds)


class PixelMedHostRuns:
    """Mixin for PixelMedAdapter: its PixelMed command lines run in the host when it is built."""

    if TYPE_CHECKING:  # provided by PixelMedAdapter
        def classpath(self) -> str: ...

    def probe(self) -> Availability:
        """The adapter's availability; its version says whether requests go to the host (`dicom-hub backends`)."""
        found = super().probe()  # type: ignore[misc]
        if not found.ok:
            return found
        off = os.environ.get("DICOM_HUB_PIXELMED_HOST") == "0"
        how = "one JVM per request (DICOM_HUB_PIXELMED_HOST=0)" if off else (f"one JVM per request: {host_missing()}" if host_missing() else "PixelMed host")
        return replace(found, version=f"{found.version}; {how}")

    def run_cmd(
        self,
        args: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        stdin: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> ToolRun:
        request = None if cwd or env or os.environ.get("DICOM_HUB_PIXELMED_HOST") == "0" else host_request(args, self.classpath())
        if request is None:
            return super().run_cmd(args, timeout=timeout, stdin=stdin, cwd=cwd, env=env)  # type: ignore[misc]
        missing = host_missing()
        if missing and os.environ.get("DICOM_HUB_REQUIRE_BACKENDS") == "1":
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"pixelmed: {missing} (DICOM_HUB_REQUIRE_BACKENDS=1)", BUILD_HINT)
        if missing:
            return super().run_cmd(args, timeout=timeout, stdin=stdin, cwd=cwd, env=env)  # type: ignore[misc]
        if stdin is not None:
            request["stdin"] = stdin
        return ask(session_for(args[0], self.classpath()), args, request, timeout)
