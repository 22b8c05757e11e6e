"""The base of every adapter that drives an external command-line toolkit.

A subclass declares its ops (`declare_ops`), says how to turn a job into an argument list
(`_build_cmd`) and how to read the tool's answer back. This base finds the binaries, runs them
without a shell, enforces the timeout on the whole process group, and turns exit codes into
contract errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dicom_hub.adapters.base import Adapter, Availability, is_network_op
from dicom_hub.adapters.child_process import child_env, private_cwd
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

DEFAULT_TIMEOUT_S = 300.0
_ERROR_RECORD = re.compile(
    r"^(?:[EF]: |\[?(?:error|fatal)\b|SEVERE|Exception|\S+(?:Exception|Error)\b|Sorry|Could not|Cannot|Unable|thread '.*' panicked)",
    re.IGNORECASE,
)
# Ops whose tools decode (and allocate) the pixel data the header describes.
PIXEL_OPS = frozenset({"to_image", "stats", "histogram", "transcode"})


@dataclass(frozen=True)
class ToolRun:
    """One finished process: what was run and what it said."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 6) -> str:
        """The last lines of stderr (or stdout), for error messages."""
        text = (self.stderr or self.stdout).strip()
        return "\n".join(text.splitlines()[-lines:])

    def explanation(self, lines: int = 3) -> str:
        """The lines that say why the tool failed: its error records (DCMTK `E:`/`F:`, `Error`,
        `SEVERE`, exceptions, GDCM's `Sorry`/`Could not`), not the warnings it printed before;
        the last lines when it printed no such record."""
        text = (self.stderr or self.stdout).strip().splitlines()
        errors = [line.strip() for line in text if _ERROR_RECORD.match(line.strip())]
        return "\n".join(errors[:lines] if errors else text[-lines:])


class SubprocessAdapter(Adapter):
    """An adapter over external binaries found on PATH (or in an override folder)."""

    executable: ClassVar[str]  # the binary whose presence means "available"
    version_args: ClassVar[tuple[str, ...]] = ("--version",)
    version_pattern: ClassVar[str] = r"(\d+\.\d+(?:\.\d+)*)"

    # -- finding binaries -------------------------------------------------------------------
    @property
    def env_prefix(self) -> str:
        return "DICOM_HUB_" + re.sub(r"[^A-Z0-9]", "_", self.name.upper())

    def tool(self, name: str) -> str:
        """Absolute path of one of the toolkit's binaries.

        `DICOM_HUB_<NAME>_BIN_DIR` points at a folder of the toolkit's binaries (a user's own
        build); `DICOM_HUB_<NAME>_BIN` overrides the main executable alone.
        """
        if name == self.executable and os.environ.get(f"{self.env_prefix}_BIN"):
            candidate = os.environ[f"{self.env_prefix}_BIN"]
            if shutil.which(candidate):
                return str(shutil.which(candidate))
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"{self.env_prefix}_BIN={candidate} is not an executable", self.install_hint)
        bin_dir = os.environ.get(f"{self.env_prefix}_BIN_DIR")
        found = shutil.which(name, path=bin_dir) if bin_dir else shutil.which(name)
        if not found:
            where = f"in {bin_dir}" if bin_dir else "on PATH"
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"{self.name}: {name} not found {where}", self.install_hint)
        return found

    def probe(self) -> Availability:
        try:
            exe = self.tool(self.executable)
        except HubError as err:
            return Availability(False, reason=err.message, hint=self.install_hint)
        try:
            run = self.run_cmd([exe, *self.version_args], timeout=30)
        except HubError as err:
            return Availability(False, reason=f"{exe} {' '.join(self.version_args)} failed: {err.message}", hint=self.install_hint)
        match = re.search(self.version_pattern, run.stdout + "\n" + run.stderr)
        return Availability(True, version=match.group(1) if match else "unknown")

    # -- running ------------------------------------------------------------------------------
    @staticmethod
    def timeout_for(job: Job | None) -> float:
        return float(job.option("timeout", DEFAULT_TIMEOUT_S)) if job else DEFAULT_TIMEOUT_S

    def run_cmd(
        self,
        args: list[str],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        stdin: str | None = None,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> ToolRun:
        """Run an argument list (never a shell); on timeout kill the whole process group."""
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise TypeError("commands are lists of strings")
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd or private_cwd(),
                env=child_env(env),
                start_new_session=True,
                text=True,
                errors="replace",
            )
        except OSError as err:
            raise HubError(ErrorCode.BACKEND_UNAVAILABLE, f"cannot start {args[0]}: {err.strerror}", self.install_hint) from None
        try:
            out, err_text = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err_text = proc.communicate()
            raise HubError(
                ErrorCode.TIMEOUT,
                f"{Path(args[0]).name} did not finish within {timeout:g} s",
                "raise options.timeout, or check that the input is not unusually large",
                stdout=out,
                stderr=err_text,
                returncode=proc.returncode,
            ) from None
        return ToolRun(args, proc.returncode, out, err_text, time.perf_counter() - start)

    def fail(self, run: ToolRun, message: str, code: ErrorCode = ErrorCode.BACKEND_ERROR, hint: str | None = None) -> HubError:
        """A `HubError` that keeps what the tool printed."""
        detail = run.explanation()
        full = f"{message}: {detail}" if detail else message
        return HubError(code, full, hint, stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)

    # -- the default request cycle ---------------------------------------------------------------
    @staticmethod
    def check_input(job: Job) -> None:
        """Refuse, before a tool starts, input that makes tools crawl or die: sequences nested
        thousands deep, a length past the end of the file, and a header whose pixel size the data cannot back (tools trust Rows x
        Columns x Frames and die with std::bad_alloc)."""
        if not job.inputs or not job.input.is_file():
            return
        from dicom_hub.contract import structure

        structure.check_file(job.input)
        if job.op in PIXEL_OPS:
            from dicom_hub.contract.pixel_size import check_file

            check_file(job.input)

    def _build_cmd(self, job: Job) -> list[str]:
        """The argument list for one job; subclasses implement it per op."""
        raise NotImplementedError

    def handle(self, job: Job) -> Outcome:
        """Check the input file (`check_input`), then run the op's handler from the table. Network ops
        send their files as they are: the peer judges them."""
        if not is_network_op(job.op):
            self.check_input(job)
        return super().handle(job)

    def interpret(self, job: Job, run: ToolRun) -> Outcome:
        """Turn a finished run into an outcome; the default trusts the exit code."""
        if run.returncode != 0:
            raise self.fail(run, f"{Path(run.args[0]).name} failed with exit code {run.returncode}")
        parsed = self.parse_json_maybe(run.stdout)
        metadata = parsed if isinstance(parsed, dict) else {}
        return Outcome(metadata=metadata, stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)

    @staticmethod
    def parse_json_maybe(text: str) -> Any | None:
        """Parse a tool's stdout as JSON when it is JSON; None otherwise (never raises)."""
        text = text.strip()
        if not text or text[0] not in "[{":
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
