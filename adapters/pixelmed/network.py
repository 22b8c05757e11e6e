"""PixelMed network ops through its SCU mains: echo, store, move.

The mains exit 0 whatever happens and print no per-request status: echo prints one line on
stdout, store and move print nothing on success and a `SEVERE:` record with a
`DicomNetworkException` on failure. So success here means: the expected line is there (echo,
on stderr),
or no error record was logged (store, move). Files that are not DICOM are kept out of the
association (PixelMed would abort it for every file) and reported per file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from dicom_hub.adapters.toolkit.store_inputs import expand_inputs, sop_instance_uid
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from dicom_hub.adapters.subprocess_adapter import ToolRun

CONNECTION = ("host", "port", "called_aet", "calling_aet")
# No TLS options: PixelMed's SCUs take TLS settings only as Java keystores (javax.net.ssl.* system
# properties), not the PEM files of the contract, so the dispatcher refuses them (unsupported_option).
# MoveSOPClassSCU takes a level and the UIDs down to it, nothing else.
MOVE_KEYS = {
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}
_ECHO_OK = re.compile(r"^VerificationSOPClass: was successful", re.MULTILINE)
_STATUS = re.compile(r"status (0x[0-9a-fA-F]{4})")


class PixelMedNetworkOps:
    """Mixin for PixelMedAdapter: the network half of the backend."""

    if TYPE_CHECKING:  # provided by PixelMedAdapter and SubprocessAdapter
        def java(self, main_class: str, *args: str, jvm_flags: tuple[str, ...] = ()) -> list[str]: ...
        def run_cmd(
            self, args: list[str], *, timeout: float = ..., stdin: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> ToolRun: ...
        @staticmethod
        def timeout_for(job: Job | None) -> float: ...

    def network_cmd(self, job: Job, target: Path | None) -> list[str]:
        host, port = str(job.option("host")), str(job.option("port"))
        called, calling = str(job.option("called_aet")), str(job.option("calling_aet"))
        if job.op == "echo":
            # NONSECURE is required although the usage text omits it; argument 3 is the called AE, 4 the calling AE.
            return self.java("network.VerificationSOPClassSCU", host, port, called, calling, "NONSECURE")
        if job.op == "store":
            # "-": file names one per stdin line; "0": debug level.
            return self.java("network.StorageSOPClassSCU", host, port, called, calling, "-", "0")
        level, uids = move_keys(job)
        return self.java("network.MoveSOPClassSCU", host, port, called, calling, str(job.option("destination")), level, *uids)

    def handle_network(self, job: Job) -> Outcome:
        if job.op == "store":
            return self._store(job)
        run = self.run_cmd(self.network_cmd(job, None), timeout=self.timeout_for(job))
        if self._network_errors(run) or (job.op == "echo" and not _ECHO_OK.search(run.stdout + run.stderr)):
            raise self._network_failure(job, run)
        success = {"status": 0, "status_hex": "0x0000", "category": "Success", "text": "Success"}
        if job.op == "echo":
            return Outcome(metadata={**success, "peer": {"host": job.option("host"), "port": job.option("port"), "called_aet": job.option("called_aet")}}, stdout=run.stdout, stderr=run.stderr)
        return Outcome(metadata={"level": move_keys(job)[0], "destination": job.option("destination"), **success}, stdout=run.stdout, stderr=run.stderr)

    def _store(self, job: Job) -> Outcome:
        files = expand_inputs(job.inputs, bool(job.option("recursive", False)))
        readable = [p for p in files if sop_instance_uid(p) is not None]
        rejected = [{"file": str(p), "status": None, "status_hex": None, "category": "Failure", "reason": "not_dicom", "text": "not a DICOM file"} for p in files if p not in readable]
        if not readable:
            raise HubError(ErrorCode.NOT_DICOM if files else ErrorCode.INPUT_NOT_FOUND, "no DICOM file to store in the input", "give DICOM files or folders holding them")
        run = self.run_cmd(self.network_cmd(job, None), timeout=self.timeout_for(job), stdin="".join(f"{p}\n" for p in readable))
        if self._network_errors(run):
            raise self._network_failure(job, run)
        stored = [{"file": str(p), "status": 0, "status_hex": "0x0000", "category": "Success", "text": "no error logged"} for p in readable]
        metadata = {"total": len(files), "completed": len(stored), "warning": 0, "failed": len(rejected), "files": stored + rejected}
        return Outcome(metadata=metadata, stdout=run.stdout, stderr=run.stderr)

    def _network_errors(self, run) -> list[str]:
        from dicom_hub.adapters.pixelmed.adapter import error_lines

        return error_lines(run.stderr) + ([f"exit code {run.returncode}"] if run.returncode != 0 else [])

    def _network_failure(self, job: Job, run) -> HubError:
        from dicom_hub.adapters.pixelmed.adapter import error_lines

        errors = error_lines(run.stderr)
        status = _STATUS.search(run.stderr)
        detail = "; ".join(errors[:2]) or "no 'was successful' line"
        message = f"{job.op} to {job.option('host')}:{job.option('port')} failed" + (f" with status {status.group(1)}" if status else "") + f": {detail}"
        return HubError(ErrorCode.NETWORK_ERROR, message, "check host, port and AE titles; is the peer running?", stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)


def move_keys(job: Job) -> tuple[str, list[str]]:
    """The level and UIDs MoveSOPClassSCU takes; any other key is an option it cannot honour."""
    level = str(job.option("level"))
    if job.option("model") == "patient" or level not in MOVE_KEYS:
        raise HubError(ErrorCode.UNSUPPORTED_OPTION, "PixelMed's MoveSOPClassSCU moves by study root at STUDY, SERIES or IMAGE level only", "use backend python, dcmtk or dicom-rs")
    query = dict(job.option("query") or {})
    wanted = MOVE_KEYS[level]
    extra = sorted(set(query) - set(wanted) - {"QueryRetrieveLevel"})
    missing = [key for key in wanted if not isinstance(query.get(key), str) or not query.get(key)]
    if extra or missing:
        raise HubError(
            ErrorCode.UNSUPPORTED_OPTION,
            f"PixelMed's MoveSOPClassSCU takes exactly {', '.join(wanted)} at level {level} (got {', '.join(sorted(query)) or 'none'})",
            "give only those UIDs, or use backend python, dcmtk or dicom-rs",
        )
    return level, [query[key] for key in wanted]
