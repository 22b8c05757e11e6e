"""dicom-rs network ops through its SCU tools: echo, store, find, move, worklist.

The query identifiers for find, move and worklist are built by the shared query builders
(`dicom_hub.contract.dicom.network.query`: the same keys every backend sends) and handed to `dicom-findscu`/`dicom-movescu` as a
query file; the tools do the networking. Their logs go to stdout and the DIMSE command dumps
(`-v`) to stderr; statuses are read from those dumps, matches from the text dumps on stdout.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dicom_hub.adapters.dicom_rs.dump import command_sets, to_json_model
from dicom_hub.adapters.toolkit.store_inputs import expand_inputs, sop_instance_uid
from dicom_hub.contract.dicom.network.query import find_query, query_model, retrieve_query, worklist_query
from dicom_hub.contract.dicom.network.status import status_info
from dicom_hub.contract.errors import ErrorCode, HubError
from dicom_hub.contract.job import Job, Outcome

if TYPE_CHECKING:
    from dicom_hub.adapters.subprocess_adapter import ToolRun
    from pydicom import Dataset

CONNECTION = ("host", "port", "called_aet", "calling_aet", "network_timeout")
# No TLS options: the installed dicom-rs SCU tools (0.10) have no TLS flags (their --help lists none;
# dicom-ul reports TlsSupportNotAvailable when built without it), so the dispatcher refuses them.
WORKLIST_MODEL = "1.2.840.10008.5.1.4.31"
_MATCH = re.compile(r"^-+ Match #\d+ -+$", re.MULTILINE)
_STORED = re.compile(r"Successfully stored instance (\S+)")
_NOT_DICOM = re.compile(r"Could not open file (.+?) as DICOM")


class RsNetworkOps:
    """Mixin for DicomRsAdapter: the network half of the backend."""

    if TYPE_CHECKING:  # provided by DicomRsAdapter
        def tool(self, name: str) -> str: ...
        def run(self, job: Job, args: list[str], *, wide: bool = False) -> ToolRun: ...

    # -- command lines -----------------------------------------------------------------------
    # Values go as --name=value and positionals after "--": clap would read a separate value that
    # begins with '-' (a valid AE title such as "-X") as an option.
    def _connection(self, job: Job) -> list[str]:
        return [*self._titles(job), f"--connect-timeout={_seconds(job, 'network_timeout', 30)}"]

    @staticmethod
    def _titles(job: Job) -> list[str]:
        return [f"--calling-ae-title={job.option('calling_aet')}", f"--called-ae-title={job.option('called_aet')}"]

    @staticmethod
    def _address(job: Job) -> str:
        return f"{job.option('host')}:{job.option('port')}"

    def network_cmd(self, job: Job, target: Path | None, files: list[Path] | None = None) -> list[str]:
        """Argument list of a network op; `target` is the query file for find/move/worklist."""
        read_timeout = f"--read-timeout={_seconds(job, 'dimse_timeout', 60)}"
        if job.op == "echo":
            return [self.tool("dicom-echoscu"), "-v", *self._connection(job), read_timeout, "--", self._address(job)]
        if job.op == "store":
            paths = files if files is not None else list(job.inputs)
            return [self.tool("dicom-storescu"), "-v", *self._connection(job), read_timeout, "--", self._address(job), *map(str, paths)]
        if job.op == "move":
            model = ["-P"] if query_model(job) == "patient" else ["-S"]
            destination = f"--move-destination={job.option('destination')}"
            return [self.tool("dicom-movescu"), "-v", *model, *self._titles(job), destination, "--", self._address(job), str(target)]
        model = ["-W"] if job.op == "worklist" else ["-P"] if query_model(job) == "patient" else ["-S"]
        return [self.tool("dicom-findscu"), "-v", *model, *self._connection(job), read_timeout, "--", self._address(job), str(target)]

    # -- running -----------------------------------------------------------------------------
    def handle_network(self, job: Job) -> Outcome:
        if job.op == "echo":
            return self._echo(job)
        if job.op == "store":
            return self._store(job)
        with tempfile.TemporaryDirectory(prefix="dicom-hub-rs-") as folder:
            query_file = Path(folder) / "query.dcm"
            level, query = query_identifier(job)
            save_query(query, query_file)
            run = self.run(job, self.network_cmd(job, query_file), wide=job.op != "move")
        if job.op == "move":
            return self._move_result(job, run, level)
        return self._find_result(job, run, level)

    def _echo(self, job: Job) -> Outcome:
        run = self.run(job, self.network_cmd(job, None))
        info = final_status(run, "C-ECHO")
        if info["status"] != 0:
            raise network_failure(run, f"C-ECHO to {self._address(job)} failed: {info['text']}")
        return Outcome(metadata={**info, "peer": {"host": job.option("host"), "port": job.option("port"), "called_aet": job.option("called_aet")}}, stdout=run.stdout, stderr=run.stderr)

    def _store(self, job: Job) -> Outcome:
        files = expand_inputs(job.inputs, bool(job.option("recursive", False)))
        if not files:
            raise HubError(ErrorCode.INPUT_NOT_FOUND, "no files to store in the input", "give DICOM files or folders holding them")
        run = self.run(job, self.network_cmd(job, None, files=files))
        log = run.stdout + run.stderr
        stored = set(_STORED.findall(log))
        refused = {Path(p).resolve() for p in _NOT_DICOM.findall(log)}
        statuses = {c.get("00001000", "").strip('"'): c for c in command_sets(log) if "00001000" in c}
        results = []
        for path in files:
            uid = sop_instance_uid(path)
            if path.resolve() in refused or uid is None:
                results.append({"file": str(path), "status": None, "status_hex": None, "category": "Failure", "reason": "not_dicom", "text": "not a DICOM file"})
                continue
            info = status_info_of(statuses.get(uid), "C-STORE") if uid in statuses else None
            if info is None:
                info = {"status": 0, "status_hex": "0x0000", "category": "Success", "text": "Success"} if uid in stored else {
                    "status": None, "status_hex": None, "category": "Failure", "text": "not sent (see stderr)"}
            results.append({"file": str(path), **info})
        completed = sum(r["category"] == "Success" for r in results)
        warning = sum(r["category"] == "Warning" for r in results)
        metadata = {"total": len(results), "completed": completed, "warning": warning, "failed": len(results) - completed - warning, "files": results}
        if completed + warning == 0:
            code = ErrorCode.NOT_DICOM if all(r.get("reason") == "not_dicom" for r in results) else ErrorCode.NETWORK_ERROR
            raise HubError(code, f"no file was stored on {self._address(job)}: {results[0]['text']}", "see stderr", stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)
        return Outcome(metadata=metadata, stdout=run.stdout, stderr=run.stderr)

    def _find_result(self, job: Job, run: ToolRun, level: str | None) -> Outcome:
        service = "worklist C-FIND" if job.op == "worklist" else "C-FIND"
        info = final_status(run, service)
        if info["category"] not in ("Success", "Pending", "Cancel"):
            raise network_failure(run, f"{service} on {self._address(job)} failed: {info['text']}")
        chunks = _MATCH.split(run.stdout)[1:]
        results = [to_json_model(chunk) for chunk in chunks]
        metadata: dict[str, Any] = {"count": len(results), "results": results, **info}
        if job.op == "find":
            metadata = {"level": level, **metadata}
        return Outcome(metadata=metadata, stdout=run.stdout, stderr=run.stderr)

    def _move_result(self, job: Job, run: ToolRun, level: str | None) -> Outcome:
        commands = [c for c in command_sets(run.stdout + "\n" + run.stderr) if "00000900" in c]
        info = final_status(run, "C-MOVE")
        last = commands[-1] if commands else {}
        counts = {name: int(last.get(tag) or 0) for name, tag in (("completed", "00001021"), ("failed", "00001022"), ("warning", "00001023"), ("remaining", "00001020"))}
        if info["category"] in ("Failure", "No response") or (counts["completed"] == 0 and counts["failed"] > 0):
            raise network_failure(run, f"C-MOVE on {self._address(job)} failed: {info['text']} (completed {counts['completed']}, failed {counts['failed']})")
        return Outcome(metadata={"level": level, "destination": job.option("destination"), **counts, **info}, stdout=run.stdout, stderr=run.stderr)


def _seconds(job: Job, option: str, default: float) -> str:
    return str(int(float(job.option(option, default)) + 0.999))


def query_identifier(job: Job) -> tuple[str | None, Dataset]:
    """The identifier every backend sends for this job (same keys, same matching)."""
    if job.op == "worklist":
        return None, worklist_query(job)
    if job.op == "move":
        return retrieve_query(job)
    return job.option("level"), find_query(job)


def save_query(query: Dataset, path: Path) -> None:
    """A query identifier as the Part 10 file the dicom-rs SCUs read (they need a file meta group)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    query.file_meta = FileMetaDataset()
    query.file_meta.MediaStorageSOPClassUID = UID(WORKLIST_MODEL)
    query.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    query.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    query.save_as(path, enforce_file_format=True)


def status_info_of(command: dict[str, str] | None, service: str) -> dict[str, Any]:
    """A dumped DIMSE response command -> the status description every backend gives."""
    from pydicom.dataset import Dataset

    if command is None or "00000900" not in command:
        return status_info(None, service)
    status = Dataset()
    status.Status = int(command["00000900"])
    if command.get("00000902"):
        status.ErrorComment = command["00000902"].strip('"')
    return status_info(status, service)


def final_status(run: ToolRun, service: str) -> dict[str, Any]:
    """The status of the last response command the tool dumped."""
    commands = [c for c in command_sets(run.stdout + "\n" + run.stderr) if "00000900" in c]
    return status_info_of(commands[-1] if commands else None, service)


def network_failure(run: ToolRun, message: str) -> HubError:
    return HubError(ErrorCode.NETWORK_ERROR, message, "check the query keys, AE titles and the peer's log", stdout=run.stdout, stderr=run.stderr, returncode=run.returncode)
